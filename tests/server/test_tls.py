"""TLS of the real server (P9, P12): TLS 1.2 and 1.3 only, Mozilla-intermediate ciphers.

Refusals are only meaningful if the client really offered the old protocol: a local
control server that does speak TLS 1.1 proves each client configuration used here can
complete a TLS 1.1 handshake, so a failure against Vouch is Vouch's refusal."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import warnings

import pytest

from tests.server.helpers import handshake, tls_context

pytestmark = pytest.mark.server

OLD_CIPHERS = "DEFAULT:@SECLEVEL=0"  # let OpenSSL offer TLS 1.0/1.1 at all
# Mozilla "intermediate" TLS 1.2 suites: forward secret (ECDHE) and AEAD only.
INTERMEDIATE_TLS12 = {
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
}
OLD_VERSIONS = [
    pytest.param(ssl.TLSVersion.TLSv1, "TLSv1", id="tls1.0"),
    pytest.param(ssl.TLSVersion.TLSv1_1, "TLSv1.1", id="tls1.1"),
]


@contextlib.contextmanager
def permissive_tls_server(server):
    """A throwaway TLS server that accepts TLS 1.0 to 1.2 and any cipher suite (the control)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(OLD_CIPHERS)
    context.load_cert_chain(server.cert_path, server.data_dir / "tls" / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError), context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)  # until the client closes

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def old_client(version: ssl.TLSVersion, server) -> ssl.SSLContext:
    return tls_context(server, minimum=version, maximum=version, ciphers=OLD_CIPHERS)


@pytest.mark.parametrize(("version", "name"), OLD_VERSIONS)
def test_old_tls_is_refused(live_vouch, version, name):
    client = old_client(version, live_vouch)
    with permissive_tls_server(live_vouch) as control_port:
        assert handshake(live_vouch, client, port=control_port)[0] == name  # the client really offers it
    with pytest.raises(ssl.SSLError):
        handshake(live_vouch, client)


def _s_client(port: int, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost", *flags],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not installed")
def test_openssl_s_client_tls11_is_refused_and_tls12_accepted(live_vouch):
    flags = ("-cipher", OLD_CIPHERS)
    with permissive_tls_server(live_vouch) as control_port:
        control = _s_client(control_port, "-tls1_1", *flags)
    assert control.returncode == 0 and "Protocol  : TLSv1.1" in control.stdout, control.stdout + control.stderr

    refused = _s_client(live_vouch.https_port, "-tls1_1", *flags)
    assert refused.returncode != 0
    assert "Cipher is (NONE)" in refused.stdout
    assert "alert" in refused.stderr.lower()

    # The same command with -tls1_2 works: the refusal above is about the version.
    accepted = _s_client(live_vouch.https_port, "-tls1_2", *flags)
    assert accepted.returncode == 0, accepted.stderr
    assert "Protocol  : TLSv1.2" in accepted.stdout


def test_tls12_handshake_uses_an_ecdhe_aead_suite(live_vouch):
    client = tls_context(live_vouch, minimum=ssl.TLSVersion.TLSv1_2, maximum=ssl.TLSVersion.TLSv1_2)
    version, cipher = handshake(live_vouch, client)
    assert version == "TLSv1.2"
    assert cipher in INTERMEDIATE_TLS12


def test_tls12_weak_suites_only_is_refused(live_vouch):
    # CBC, non-forward-secret (static RSA) and DHE suites only: none is acceptable.
    weak = [
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA384",
        "AES128-SHA",
        "AES128-GCM-SHA256",
        "DHE-RSA-AES128-GCM-SHA256",
    ]
    client = tls_context(
        live_vouch,
        minimum=ssl.TLSVersion.TLSv1_2,
        maximum=ssl.TLSVersion.TLSv1_2,
        ciphers=":".join(weak) + ":@SECLEVEL=0",
    )
    with permissive_tls_server(live_vouch) as control_port:
        version, cipher = handshake(live_vouch, client, port=control_port)
        assert version == "TLSv1.2" and cipher in weak  # the client can and does offer them
    with pytest.raises(ssl.SSLError):
        handshake(live_vouch, client)


def test_tls13_handshake_succeeds(live_vouch):
    client = tls_context(live_vouch, minimum=ssl.TLSVersion.TLSv1_3)
    version, cipher = handshake(live_vouch, client)
    assert version == "TLSv1.3"
    assert cipher in {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}


def test_plain_http_on_the_https_port_is_not_served(live_vouch):
    with socket.create_connection(("127.0.0.1", live_vouch.https_port), timeout=10) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        received = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(4096):
                received += chunk
    assert not received.startswith(b"HTTP/")

"""HEAD carries no body over HTTP/1.1 or HTTP/2, and TRACE or unknown methods get 405
(RFC 9110 9.3.2, 9.3.8), on the HTTPS server and the HTTP redirect alike."""

from __future__ import annotations

import socket
import ssl

import h2.config
import h2.connection
import h2.events
import pytest

from tests.server.helpers import http_request, request

pytestmark = pytest.mark.server

PAGES = ["/accounts/login/", "/", "/healthz", "/no-such-page/", "/static/vouch/favicon.svg"]


def _h2_exchange(server, method: str, path: str) -> tuple[dict[str, str], bytes]:
    """One request over HTTP/2; the response headers and every DATA byte received.
    A raw h2 connection, so a body sent on a HEAD response is seen, not discarded."""
    context = ssl.create_default_context(cafile=str(server.cert_path))
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", server.https_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.selected_alpn_protocol() == "h2"
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        stream = conn.get_next_available_stream_id()
        headers = [(":method", method), (":path", path), (":scheme", "https"), (":authority", "localhost")]
        conn.send_headers(stream, headers, end_stream=True)
        tls.sendall(conn.data_to_send())
        response_headers: dict[str, str] = {}
        body = b""
        ended = False
        while not ended:
            data = tls.recv(65536)
            assert data, "the server closed the connection before the stream ended"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    response_headers = dict(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                    ended = True
            tls.sendall(conn.data_to_send())
        return response_headers, body


PROBE = "x-trace-probe: vouch-echo-7f3a"


def _http11_raw(server, method: str, path: str) -> bytes:
    """The whole HTTP/1.1 exchange as bytes (Connection: close), so any body is seen."""
    context = ssl.create_default_context(cafile=str(server.cert_path))
    context.set_alpn_protocols(["http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", server.https_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n{PROBE}\r\nConnection: close\r\n\r\n".encode())
        received = b""
        while chunk := tls.recv(65536):
            received += chunk
        return received


@pytest.mark.parametrize("path", PAGES)
def test_head_over_http2_sends_headers_only(live_vouch, path):
    get_headers, get_body = _h2_exchange(live_vouch, "GET", path)
    assert get_body, "the GET has a body to compare with"
    head_headers, head_body = _h2_exchange(live_vouch, "HEAD", path)
    assert head_headers[":status"] == get_headers[":status"]
    assert head_body == b"", f"HEAD {path} sent {len(head_body)} body bytes over HTTP/2"
    # The headers are the GET's: a monitor learns the length without the body.
    assert head_headers.get("content-length") == str(len(get_body))
    assert head_headers.get("content-type") == get_headers.get("content-type")
    # HTTP/2 forbids whitespace around field values (RFC 9113, 8.2.1); h2 checks every one.
    assert all(value == value.strip() for value in head_headers.values())


@pytest.mark.parametrize("path", PAGES)
def test_head_over_http11_sends_headers_only(live_vouch, path):
    get_body = request(live_vouch, "GET", path).body
    raw = _http11_raw(live_vouch, "HEAD", path)
    head, _, after = raw.partition(b"\r\n\r\n")
    assert after == b""
    lengths = [
        line.split(b":", 1)[1].strip() for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    ]
    assert lengths == [str(len(get_body)).encode()]


@pytest.mark.parametrize("method", ["TRACE", "TRACK", "CONNECT", "PROPFIND", "FOO"])
def test_trace_and_unknown_methods_are_refused(live_vouch, method):
    raw = _http11_raw(live_vouch, method, "/")
    status_line, _, _ = raw.partition(b"\r\n")
    assert b" 405 " in status_line, status_line
    assert b"allow: " in raw.lower()
    # A TRACE must not echo the request back (its headers are in no response part).
    assert PROBE.split(": ")[1].encode() not in raw
    headers, body = _h2_exchange(live_vouch, "TRACE", "/")
    assert headers[":status"] == "405"


def test_trace_on_the_http_port_is_refused_not_redirected(live_vouch):
    response = http_request(live_vouch, "TRACE", "/")
    assert response.status == 405
    assert response.header("Location") is None
    assert http_request(live_vouch, "GET", "/").status == 301
    assert http_request(live_vouch, "POST", "/").status == 308


def test_ordinary_methods_still_reach_the_app(live_vouch):
    assert request(live_vouch, "GET", "/accounts/login/").status == 200
    assert request(live_vouch, "OPTIONS", "/accounts/login/").status != 405

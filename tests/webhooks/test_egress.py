"""The guard against server-side request forgery, attacked (vouch.webhooks.egress)."""

from __future__ import annotations

import ipaddress
import socket
import time

import pytest
from django.test import override_settings

from tests.webhooks.receiver import Answer
from vouch.webhooks import egress


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",  # not https
        "ftp://example.com/hook",
        "https://user:pw@example.com/hook",  # credentials in the URL
        "https:///hook",  # no host
        "https://127.0.0.1/hook",  # loopback
        "https://10.1.2.3/hook",  # private
        "https://172.16.0.1/hook",
        "https://192.168.1.1/hook",
        "https://100.64.0.1/hook",  # carrier-grade NAT
        "https://169.254.169.254/latest/meta-data/",  # cloud metadata
        "https://0.0.0.0/hook",  # unspecified
        "https://224.0.0.1/hook",  # multicast
        "https://240.0.0.1/hook",  # reserved
        "https://[::1]/hook",  # IPv6 loopback
        "https://[::]/hook",
        "https://[fe80::1]/hook",  # link-local
        "https://[fd00:ec2::254]/hook",  # AWS's IPv6 metadata address (unique-local)
        "https://[fc00::1]/hook",
        "https://[ff02::1]/hook",  # IPv6 multicast
        "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
        "https://[::ffff:a9fe:a9fe]/hook",  # IPv4-mapped metadata address
        "https://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
        "https://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
        "https://2130706433/hook",  # 127.0.0.1 as one decimal number
        "https://0177.0.0.1/hook",  # octal
        "https://0x7f.0.0.1/hook",  # hex
        "https://0x7f000001/hook",
        "https://127.1/hook",  # short form
        "https://localhost/hook",  # a name resolving to loopback
        "https://localhost./hook",
        "https://does-not-exist.invalid/hook",  # does not resolve
    ],
)
def test_refused_urls(url):
    with pytest.raises(egress.Refused):
        egress.check(url)


def test_public_addresses_pass_the_address_rule():
    for value in ("93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"):
        assert egress.is_public(ipaddress.ip_address(value)), value
    for value in ("127.0.0.1", "10.0.0.1", "100.100.100.100", "169.254.169.254", "fd00:ec2::254", "::ffff:10.0.0.1"):
        assert not egress.is_public(ipaddress.ip_address(value)), value


def test_a_name_with_one_private_address_among_public_ones_is_refused(monkeypatch):
    answers = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 443)),
    ]
    monkeypatch.setattr(egress.socket, "getaddrinfo", lambda *args, **kwargs: answers)
    with pytest.raises(egress.Refused):
        egress.check("https://mixed.example/hook")


def test_the_address_connected_to_is_the_one_vetted(receiver, monkeypatch):
    """DNS rebinding: the name resolves once; a second answer (the metadata address)
    is never asked for, and the connection goes to the vetted address with the name
    in SNI (the certificate is checked for it) and in Host."""
    calls = []
    answers = [("127.0.0.1", receiver.port), ("169.254.169.254", receiver.port)]

    def rebinding(host, port, *args, **kwargs):
        calls.append(host)
        address = answers[min(len(calls) - 1, 1)]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", address)]

    monkeypatch.setattr(egress.socket, "getaddrinfo", rebinding)
    answer = egress.post(receiver.url(host="localhost"), b"{}", {"Content-Type": "application/json"})
    assert answer.status == 204
    assert calls == ["localhost"]
    assert receiver.received[0].headers["host"] == f"localhost:{receiver.port}"
    # And the next post asks again, gets the metadata address, and is refused before connecting.
    with pytest.raises(egress.Refused):
        egress.post(receiver.url(host="localhost"), b"{}", {})
    assert len(receiver.received) == 1


def test_a_local_receiver_is_refused_without_the_test_setting(receiver):
    with override_settings(VOUCH_WEBHOOKS_ALLOW_NETWORKS=[]), pytest.raises(egress.Refused):
        egress.post(receiver.url(), b"{}", {})
    assert receiver.received == []


def test_redirects_are_not_followed(receiver):
    receiver.script(Answer(status=302, headers={"Location": "https://169.254.169.254/latest/meta-data/"}))
    receiver.script(Answer(status=307, headers={"Location": receiver.url("/internal")}))
    assert egress.post(receiver.url(), b"{}", {}).status == 302
    assert egress.post(receiver.url(), b"{}", {}).status == 307
    assert [item.path for item in receiver.received] == ["/hooks", "/hooks"]


def test_an_oversized_answer_is_cut_off(receiver):
    receiver.script(Answer(status=200, body_size=64 * 1024 * 1024))
    started = time.monotonic()
    assert egress.post(receiver.url(), b"{}", {}).status == 200
    assert time.monotonic() - started < 10
    # The sender stopped reading at the cap: the receiver could not write it all.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and receiver.bytes_written == 0:
        time.sleep(0.05)
    assert receiver.bytes_written < 64 * 1024 * 1024


def test_a_dripping_answer_is_cut_off(receiver, monkeypatch):
    monkeypatch.setattr(egress, "TOTAL_SECONDS", 1.0)
    receiver.script(Answer(status=200, body_size=1000, drip=0.05))
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        egress.post(receiver.url(), b"{}", {})
    assert time.monotonic() - started < 3


def test_a_slow_answer_times_out(receiver, monkeypatch):
    monkeypatch.setattr(egress, "READ_SECONDS", 0.3)
    receiver.script(Answer(status=200, delay=1.5))
    with pytest.raises(TimeoutError):
        egress.post(receiver.url(), b"{}", {})


def test_an_untrusted_certificate_is_refused(receiver):
    with override_settings(VOUCH_WEBHOOKS_CA_FILE=None), pytest.raises(OSError):
        egress.post(receiver.url(), b"{}", {})


# --- connections kept between deliveries ------------------------------------------------


@pytest.fixture
def connects(monkeypatch):
    """The addresses new connections were opened to (the real connect, counted)."""
    opened: list[str] = []
    real = egress._PinnedConnection.connect

    def counting(self):
        opened.append(str(self._address))
        real(self)

    monkeypatch.setattr(egress._PinnedConnection, "connect", counting)
    return opened


def test_a_burst_to_one_receiver_shares_one_connection(receiver, connects):
    for n in range(5):
        assert egress.post(receiver.url(), f'{{"n":{n}}}'.encode(), {"Content-Type": "application/json"}).status == 204
    assert [item.body for item in receiver.received] == [f'{{"n":{n}}}'.encode() for n in range(5)]
    assert connects == ["127.0.0.1"]


def test_a_changed_resolution_never_reuses_the_kept_connection(receiver, connects, monkeypatch):
    """The name answered 127.0.0.1 (vetted; the connection kept), then another address:
    the delivery goes to the new address (here nothing listens: it fails) and never down
    the connection to the old one; an address the guard refuses is refused before any
    connection, kept or not."""
    answers = iter(["127.0.0.1", "127.0.0.2", "169.254.169.254"])
    monkeypatch.setattr(
        egress.socket,
        "getaddrinfo",
        lambda host, port, *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))],
    )
    with override_settings(VOUCH_WEBHOOKS_ALLOW_NETWORKS=["127.0.0.0/8"]):
        assert egress.post(receiver.url(host="localhost"), b"{}", {}).status == 204
        with pytest.raises(OSError):
            egress.post(receiver.url(host="localhost"), b"{}", {})
        with pytest.raises(egress.Refused):
            egress.post(receiver.url(host="localhost"), b"{}", {})
    assert connects == ["127.0.0.1", "127.0.0.2"]
    assert len(receiver.received) == 1


def test_the_allowed_networks_are_checked_again_for_a_kept_connection(receiver, connects):
    assert egress.post(receiver.url(), b"{}", {}).status == 204
    with override_settings(VOUCH_WEBHOOKS_ALLOW_NETWORKS=[]), pytest.raises(egress.Refused):
        egress.post(receiver.url(), b"{}", {})
    assert len(receiver.received) == 1


def test_a_redirect_or_a_failure_ends_the_connection(receiver, connects):
    receiver.script(
        Answer(status=302, headers={"Location": "https://169.254.169.254/"}),
        Answer(status=500),
        Answer(status=204),
        Answer(status=204),
    )
    assert [egress.post(receiver.url(), b"{}", {}).status for _ in range(4)] == [302, 500, 204, 204]
    # A new connection after the 302 and after the 500; the last two 204s share one.
    assert len(connects) == 3


def test_a_kept_connection_the_receiver_closed_is_replaced_and_nothing_is_lost(receiver, connects):
    receiver.script(Answer(status=204, hang_up=True), Answer(status=204), Answer(status=204))
    assert egress.post(receiver.url(), b'{"n":1}', {}).status == 204
    assert egress.post(receiver.url(), b'{"n":2}', {}).status == 204
    assert egress.post(receiver.url(), b'{"n":3}', {}).status == 204
    assert [item.body for item in receiver.received] == [b'{"n":1}', b'{"n":2}', b'{"n":3}']
    assert len(connects) == 2


def test_a_kept_connection_idle_too_long_is_not_used(receiver, connects, monkeypatch):
    assert egress.post(receiver.url(), b"{}", {}).status == 204
    monkeypatch.setattr(egress, "IDLE_SECONDS", 0.0)
    assert egress.post(receiver.url(), b"{}", {}).status == 204
    assert len(connects) == 2


def test_a_kept_connection_does_not_wait_on_nagle(receiver):
    """Small writes go at once: a kept connection's next request does not sit out the
    receiver's delayed ACK (40 ms a delivery, which made reuse slower than none)."""
    assert egress.post(receiver.url(), b"{}", {}).status == 204
    (connection, _idle, _pid), *_ = egress._kept.values()
    assert connection.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

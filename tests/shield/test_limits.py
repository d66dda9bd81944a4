"""Rate limits per address, network, account and company, by route class (P3,
vouch.shield.limits): past a limit, 429 with Retry-After; normal use is untouched."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest
from django.core.cache import caches
from django.http import HttpResponse
from django.test import RequestFactory

from tests.conftest import make_company, make_user
from vouch.audit.models import EventAction, SecurityEvent
from vouch.core import metrics
from vouch.shield import limits, limits_middleware
from vouch.shield.limits_middleware import ClientLimitsMiddleware

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


@pytest.fixture
def clock(limits_clock):
    return limits_clock


def _get(client, path: str, address: str = "192.0.2.10", **extra):
    return client.get(path, REMOTE_ADDR=address, **extra)


def _refused(response) -> bool:
    return response.status_code == 429


def _throttled(route_class: str, scope: str) -> float:
    return metrics.throttled_total.labels(route_class=route_class, scope=scope)._value.get()


def test_past_the_limit_a_client_gets_429_with_retry_after(client, settings, clock):
    settings.VOUCH_RATE_LIMITS = "sign_in.address=5"
    for _ in range(5):
        assert _get(client, LOGIN).status_code == 200
    refused = _get(client, LOGIN)
    assert refused.status_code == 429
    assert refused["Retry-After"] == str(limits.WINDOW - 1)  # one second into the minute
    assert b"Too many requests" in refused.content
    assert b"your address" in refused.content
    # Another address is not held back by this one.
    assert _get(client, LOGIN, address="192.0.2.11").status_code == 200


def test_the_limit_is_per_route_class(client, settings, clock):
    settings.VOUCH_RATE_LIMITS = "sign_in.address=3"
    for _ in range(3):
        _get(client, LOGIN)
    assert _refused(_get(client, LOGIN))
    assert not _refused(_get(client, "/"))  # the generic class has its own, larger, count


def test_many_addresses_of_one_ipv6_64_share_the_network_limit(client, settings, clock):
    settings.VOUCH_RATE_LIMITS = "sign_in.network=10"
    for n in range(10):
        assert _get(client, LOGIN, address=f"2001:db8:1:2::{n + 1:x}").status_code == 200
    # A fresh address of the same /64 (a new one every request costs an attacker nothing).
    refused = _get(client, LOGIN, address="2001:db8:1:2:ffff:ffff:ffff:1")
    assert refused.status_code == 429
    assert b"your network" in refused.content
    assert _get(client, LOGIN, address="2001:db8:1:3::1").status_code == 200  # the next /64


def test_ipv4_addresses_of_one_24_share_the_network_limit(client, settings, clock):
    settings.VOUCH_RATE_LIMITS = "sign_in.network=4"
    for n in range(4):
        _get(client, LOGIN, address=f"198.51.100.{n + 1}")
    assert _refused(_get(client, LOGIN, address="198.51.100.200"))
    assert _refused(_get(client, LOGIN, address="::ffff:198.51.100.201"))  # the same, seen through IPv6
    assert not _refused(_get(client, LOGIN, address="198.51.101.1"))


def test_a_signed_in_account_is_limited_from_any_address(client, settings, clock, owner):
    settings.VOUCH_RATE_LIMITS = "page.account=5"
    client.force_login(owner.user)
    for n in range(5):
        assert _get(client, "/dashboard/", address=f"203.0.113.{n + 1}").status_code == 200
    refused = _get(client, "/dashboard/", address="198.51.100.99")
    assert refused.status_code == 429
    assert b"your account" in refused.content


def test_one_companys_burst_does_not_limit_another_company(client, settings, clock, owner):
    settings.VOUCH_RATE_LIMITS = "page.company=6"
    other_user = make_user()
    make_company(name="Other Company", owner=other_user)
    client.force_login(owner.user)
    for n in range(6):
        assert _get(client, "/dashboard/", address=f"203.0.113.{n + 1}").status_code == 200
    refused = _get(client, "/dashboard/", address="203.0.113.50")
    assert refused.status_code == 429
    assert b"your company" in refused.content
    client.force_login(other_user)
    assert _get(client, "/dashboard/", address="203.0.113.51").status_code == 200


def test_counters_expire_with_their_minute(client, settings, clock):
    settings.VOUCH_RATE_LIMITS = "sign_in.address=2"
    _get(client, LOGIN)
    _get(client, LOGIN)
    assert _refused(_get(client, LOGIN))
    clock[0] += limits.WINDOW
    assert _get(client, LOGIN).status_code == 200


def test_normal_browsing_is_untouched_by_the_default_limits(client, clock, owner):
    client.force_login(owner.user)
    pages = ["/dashboard/", "/requests/", "/candidates/", "/requests/?q=smith", "/questionnaires/", LOGIN]
    for _ in range(20):
        for page in pages:
            assert not _refused(_get(client, page))


def test_probes_are_never_limited(client, settings, clock):
    settings.VOUCH_RATE_LIMITS = "*.*=1"
    for _ in range(5):
        assert _get(client, "/livez").status_code == 200


def test_an_exempt_address_skips_the_address_and_network_limits(client, settings, clock):
    settings.VOUCH_RATE_LIMITS = "sign_in.address=1"
    settings.VOUCH_RATE_LIMIT_EXEMPT = ["192.0.2.0/28"]
    client.handler.load_middleware()  # the middleware reads the exempt networks once
    for _ in range(5):
        assert _get(client, LOGIN, address="192.0.2.5").status_code == 200
    _get(client, LOGIN, address="192.0.2.99")
    assert _refused(_get(client, LOGIN, address="192.0.2.99"))


def test_the_benchmark_switch_and_off_turn_the_limits_off(client, settings, clock):
    settings.VOUCH_RATE_LIMITS = "off"
    for _ in range(3):
        assert not _refused(_get(client, LOGIN))
    settings.VOUCH_RATE_LIMITS = "sign_in.address=1"
    settings.VOUCH_PROTECTIONS_OFF = True
    for _ in range(3):
        assert not _refused(_get(client, LOGIN))


def test_a_refusal_is_counted_and_recorded_as_a_sampled_event(client, settings, clock):
    settings.VOUCH_RATE_LIMITS = "sign_in.address=1"
    before = _throttled("sign_in", "address")
    _get(client, LOGIN, address="192.0.2.77")
    for _ in range(5):
        assert _refused(_get(client, LOGIN, address="192.0.2.77"))
    assert _throttled("sign_in", "address") == before + 5
    rows = list(SecurityEvent.objects.filter(action=EventAction.RATE_LIMITED))
    assert len(rows) == 1  # one a minute from a network: the other four only counted
    event = rows[0]
    assert event.ip == "192.0.2.77"
    assert event.outcome == "blocked"
    assert event.details["route_class"] == "sign_in"
    assert event.details["scope"] == "address"


def test_the_count_is_shared_by_server_processes(settings, clock):
    """Two processes (two counters, one cache): together they stop near the limit,
    over it by at most one batch of the other's uncounted requests."""
    settings.VOUCH_RATE_LIMITS = ""
    first, second = limits.Counter(), limits.Counter()
    window = int(clock[0] // limits.WINDOW)
    allowed = 0
    for n in range(400):
        if (first if n % 2 else second).hit("page:address:192.0.2.1", 200, window):
            allowed += 1
    assert 200 <= allowed <= 200 + 200 // 20


def test_a_cache_that_does_not_answer_leaves_each_process_counting_alone(settings, clock, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("the cache is out")

    cache = caches[limits.CACHE_ALIAS]
    monkeypatch.setattr(cache, "incr", broken)
    monkeypatch.setattr(cache, "add", broken)
    counter = limits.Counter()
    window = int(clock[0] // limits.WINDOW)
    results = [counter.hit("page:address:192.0.2.1", 40, window) for _ in range(50)]
    assert results == [True] * 40 + [False] * 10


def test_a_bad_setting_is_refused_with_a_clear_message():
    with pytest.raises(limits.LimitsError, match="class one of"):
        limits.parse("pages.address=5")
    with pytest.raises(limits.LimitsError, match="whole number"):
        limits.parse("page.address=lots")
    assert limits.parse("page.*=7")["page"] == {"address": 7, "network": 7, "account": 7, "company": 7}


def test_route_classes():
    factory = RequestFactory()
    cases = {
        factory.get("/accounts/login/"): "sign_in",
        factory.get("/r/abc/"): "link",
        factory.post("/c/abc/details/", {"file": ("a.txt", b"x")}): "upload",
        factory.get("/requests/00000000-0000-0000-0000-000000000000/report.pdf"): "pdf",
        factory.get("/requests/", {"q": "smith"}): "search",
        factory.get("/requests/", {"q": " "}): "page",
        factory.get("/dashboard/"): "page",
        factory.get("/livez"): "probe",
        factory.get("/static/vouch.css"): "static",
    }
    for request, expected in cases.items():
        assert limits.route_class(request) == expected, request.path


@contextlib.contextmanager
def _in_progress(middleware_class, requests: list) -> Iterator[list[int]]:
    """``requests`` sent at once through ``middleware_class`` in front of a view that
    waits until the block ends: inside it, every request that got through is in
    progress. Yields the statuses answered, complete after the block."""
    release = threading.Event()
    entered = threading.Semaphore(0)

    def slow_view(request):
        entered.release()
        release.wait(10)
        return HttpResponse("done")

    middleware = middleware_class(slow_view)
    answers: list[int] = []
    threads = [threading.Thread(target=lambda r=r: answers.append(middleware(r).status_code)) for r in requests]
    for thread in threads:
        thread.start()
    try:
        for _ in threads:
            assert entered.acquire(timeout=5)
        yield answers
    finally:
        release.set()
        for thread in threads:
            thread.join(5)


def test_one_address_holds_at_most_its_share_of_the_threads(settings, clock):
    """The in-flight cap: a client with requests still in progress (a slow body, say)
    gets 429 for one more, while another client is served."""
    settings.VOUCH_CLIENT_IN_FLIGHT = 2
    settings.VOUCH_RATE_LIMITS = ""
    factory = RequestFactory()
    middleware = ClientLimitsMiddleware(lambda request: HttpResponse("done"))
    with _in_progress(ClientLimitsMiddleware, [factory.get("/", REMOTE_ADDR="192.0.2.8") for _ in range(2)]) as answers:
        third = middleware(factory.get("/", REMOTE_ADDR="192.0.2.8"))
        assert third.status_code == 429
        assert third["Retry-After"] == "1"
    assert answers == [200, 200]
    assert limits_middleware.in_flight.held == {}
    assert middleware(factory.get("/", REMOTE_ADDR="192.0.2.8")).status_code == 200


def test_members_behind_one_address_are_not_counted_by_address(settings, clock):
    """Colleagues behind one office address each have a session: the address's in-flight
    cap (for those not signed in) does not refuse their third page at once; their
    accounts' own caps apply later, in AccountLimitsMiddleware."""
    settings.VOUCH_CLIENT_IN_FLIGHT = 2
    settings.VOUCH_RATE_LIMITS = ""
    factory = RequestFactory()

    def member_page(n: int):
        request = factory.get("/", REMOTE_ADDR="192.0.2.9")
        request.COOKIES[settings.SESSION_COOKIE_NAME] = f"colleague-{n}"
        return request

    # All three in progress at once (the block is entered only when each reached the view).
    with _in_progress(ClientLimitsMiddleware, [member_page(n) for n in range(3)]) as answers:
        pass
    assert answers == [200, 200, 200]
    assert limits_middleware.in_flight.held == {}

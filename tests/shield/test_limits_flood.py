"""What a flood from many addresses meets (P3, vouch.shield.limits, docs/security/limits.md):
the ten-second limits per network, the cap on requests of people not signed in in
progress at once, the cap per account, refusals that write nothing, and low priority
(vouch.shield.priority) for those not signed in and accounts sending too many at once. An
office of 200 behind one /24 is never refused."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from tests.conftest import make_user
from tests.shield.test_limits import LOGIN, _get
from vouch.audit import sampling
from vouch.audit.models import EventAction, SecurityEvent
from vouch.core import metrics
from vouch.shield import limits, limits_middleware, priority
from vouch.shield.limits_middleware import AccountLimitsMiddleware, ClientLimitsMiddleware

pytestmark = pytest.mark.django_db

OFFICE = "198.51.100"  # one /24


def _address(network: str, n: int) -> str:
    return f"{network}.{n % 254 + 1}"


def test_a_flood_spread_over_a_network_meets_its_ten_second_limit(client, limits_clock):
    """Every request from another address of one /24: no address comes near its limit,
    the network's ten seconds do, long before its minute would."""
    limit = limits.BURST_DEFAULTS["sign_in"]["network"]
    answers = [_get(client, LOGIN, address=_address("192.0.2", n)).status_code for n in range(limit)]
    assert answers == [200] * limit
    refused = _get(client, LOGIN, address="192.0.2.250")
    assert refused.status_code == 429
    assert b"your network" in refused.content
    assert refused["Retry-After"] == str(limits.BURST_WINDOW - 1)  # one second into the window
    # Another network is not held back; the next ten seconds are new.
    assert _get(client, LOGIN, address="203.0.113.5").status_code == 200
    limits_clock[0] += limits.BURST_WINDOW
    assert _get(client, LOGIN, address="192.0.2.250").status_code == 200


def test_an_office_of_200_behind_one_network_is_not_refused(client, limits_clock, owner):
    """200 people of one /24 sign in over a minute (the sign-in page, then its reset page
    for some), then browse as members: nobody gets a 429."""
    statuses: list[int] = []
    for n in range(200):
        address = f"{OFFICE}.{n + 1}"
        client.logout()
        statuses.append(_get(client, LOGIN, address=address).status_code)
        if n % 4 == 0:  # a quarter forgot their password
            statuses.append(_get(client, "/accounts/password/reset/", address=address).status_code)
        client.force_login(owner.user)
        statuses.append(_get(client, "/dashboard/", address=address).status_code)
        statuses.append(_get(client, "/requests/", address=address).status_code)
        limits_clock[0] += 0.3  # 200 people over a minute: a rush, all of them at nine
    assert 429 not in statuses
    assert set(statuses) == {200}


def test_ten_second_limits_are_set_like_the_minute_ones(client, settings, limits_clock):
    settings.VOUCH_BURST_LIMITS = "sign_in.address=3"
    assert [_get(client, LOGIN).status_code for _ in range(4)] == [200, 200, 200, 429]
    settings.VOUCH_BURST_LIMITS = "off"
    assert _get(client, LOGIN).status_code == 200
    with pytest.raises(limits.LimitsError, match="VOUCH_BURST_LIMITS: .* requests a ten seconds|ten seconds"):
        limits.parse("sign_in.network=many", "VOUCH_BURST_LIMITS")
    # The minute's switch turns them off too.
    limits.reset()
    settings.VOUCH_BURST_LIMITS = "sign_in.address=1"
    settings.VOUCH_RATE_LIMITS = "off"
    assert [_get(client, LOGIN).status_code for _ in range(3)] == [200, 200, 200]


def test_a_refusal_writes_nothing_to_the_database(client, settings, limits_clock):
    """The first refusal of a minute is recorded (sampled); the others are counted in the
    process and added to the cache in one write later, never one write each."""
    settings.VOUCH_BURST_LIMITS = "sign_in.address=1"
    settings.VOUCH_SAMPLING_BATCH_SECONDS = 60  # the timer does not fire during the test
    assert _get(client, LOGIN).status_code == 200
    assert _get(client, LOGIN).status_code == 429  # recorded: the minute's first
    with CaptureQueriesContext(connection) as queries:
        for _ in range(20):
            assert _get(client, LOGIN).status_code == 429
    assert len(queries) == 0, [q["sql"] for q in queries]
    window = int(sampling.now() // sampling.INTERVAL)
    base = sampling._base(EventAction.RATE_LIMITED, "rate_limited:sign_in:address", "192.0.2.0/24")
    assert cache.get(f"{base}:n:{window}") is None  # still in the process
    sampling.batch.flush()
    assert cache.get(f"{base}:n:{window}") == 20
    # Two minutes on, the next recorded refusal carries them.
    limits_clock[0] += 2 * sampling.INTERVAL
    limits.reset()
    _get(client, LOGIN)
    assert _get(client, LOGIN).status_code == 429
    carried = SecurityEvent.objects.filter(action=EventAction.RATE_LIMITED).order_by("-id").first()
    assert carried.details["not_recorded"] == 20


def test_counts_kept_in_the_process_are_added_before_a_minute_is_taken(client, settings, limits_clock):
    settings.VOUCH_BURST_LIMITS = "sign_in.address=1"
    settings.VOUCH_SAMPLING_BATCH_SECONDS = 60
    for _ in range(6):
        _get(client, LOGIN)  # one served, one recorded, four counted here
    window = int(sampling.now() // sampling.INTERVAL)
    limits_clock[0] += 3 * sampling.INTERVAL
    event = sampling.flush(EventAction.RATE_LIMITED, "rate_limited:sign_in:address", "192.0.2.0/24", window)
    assert event is not None and event.details["not_recorded"] == 4


# --- in progress at once ----------------------------------------------------------------


class Held:
    """A view that holds its requests until released, and the answers they got."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)
        self.answers: list[int] = []
        self.threads: list[threading.Thread] = []

    def view(self, request: HttpRequest) -> HttpResponse:
        self.entered.release()
        self.release.wait(10)
        return HttpResponse("done")

    def hold(self, middleware: Callable[[HttpRequest], HttpResponse], requests: list[HttpRequest]) -> None:
        for request in requests:
            thread = threading.Thread(target=lambda r=request: self.answers.append(middleware(r).status_code))
            thread.start()
            self.threads.append(thread)
        for _ in requests:
            assert self.entered.acquire(timeout=5)

    def finish(self) -> None:
        self.release.set()
        for thread in self.threads:
            thread.join(5)


def _anonymous(address: str, cookie: str | None = None) -> HttpRequest:
    request = RequestFactory().get("/accounts/login/", REMOTE_ADDR=address)
    if cookie is not None:
        request.COOKIES["__Host-vouch_session"] = cookie
    request.user = AnonymousUser()
    return request


def _member(user, path: str = "/dashboard/", address: str = "192.0.2.77") -> HttpRequest:
    request = RequestFactory().get(path, REMOTE_ADDR=address)
    request.COOKIES["__Host-vouch_session"] = f"session-of-{user.pk}"  # each account its own
    request.user = user
    setattr(request, limits_middleware.ROUTE_ATTRIBUTE, "page")  # as ClientLimitsMiddleware sets it
    return request


def test_people_not_signed_in_hold_at_most_their_share_of_the_threads(settings, limits_clock):
    """From many addresses at once, without a session: past VOUCH_ANONYMOUS_IN_FLIGHT in
    progress, 429 at once; a signed-in member is still served (never refused for others)."""
    settings.VOUCH_ANONYMOUS_IN_FLIGHT = 2
    held = Held()
    client_limits = ClientLimitsMiddleware(AccountLimitsMiddleware(held.view))
    member = make_user("member-flood@example.com")
    served = threading.Thread(target=lambda: held.answers.append(client_limits(_member(member)).status_code))
    try:
        held.hold(client_limits, [_anonymous("192.0.2.1"), _anonymous("203.0.113.1")])
        third = client_limits(_anonymous("198.51.100.1"))
        assert third.status_code == 429 and third["Retry-After"] == "1"
        assert b"not signed in" in third.content
        # A made-up session cookie passes the early check, and is capped once it signs no one in.
        assert client_limits(_anonymous("198.51.100.2", cookie="made-up")).status_code == 429
        # A member's request goes through: only their own account's requests count for them.
        served.start()
        assert held.entered.acquire(timeout=5)
    finally:
        held.finish()
        served.join(5)
    assert sorted(held.answers) == [200, 200, 200]
    assert limits_middleware.in_flight.held == {}
    assert client_limits(_anonymous("198.51.100.1")).status_code == 200


def test_one_account_holds_at_most_its_share_of_the_threads(settings, limits_clock):
    settings.VOUCH_ACCOUNT_IN_FLIGHT = 2
    held = Held()
    account_limits = AccountLimitsMiddleware(held.view)
    flooder, other = make_user("flooder@example.com"), make_user("other@example.com")
    another = threading.Thread(target=lambda: held.answers.append(account_limits(_member(other)).status_code))
    try:
        held.hold(account_limits, [_member(flooder, address="192.0.2.1"), _member(flooder, address="192.0.2.2")])
        third = account_limits(_member(flooder, address="203.0.113.3"))
        assert third.status_code == 429 and b"your account" in third.content
        another.start()
        assert held.entered.acquire(timeout=5)
    finally:
        held.finish()
        another.join(5)
    assert held.answers == [200, 200, 200]
    assert limits_middleware.in_flight.held == {}


def test_an_exempt_address_has_no_in_flight_cap(settings, limits_clock):
    settings.VOUCH_ANONYMOUS_IN_FLIGHT = 1
    settings.VOUCH_RATE_LIMIT_EXEMPT = ["192.0.2.0/24"]
    held = Held()
    client_limits = ClientLimitsMiddleware(AccountLimitsMiddleware(held.view))
    try:
        held.hold(client_limits, [_anonymous("192.0.2.1"), _anonymous("192.0.2.2", cookie="made-up")])
    finally:
        held.finish()
    assert held.answers == [200, 200]


# --- low priority (vouch.shield.priority) -----------------------------------------------


class Entered(Held):
    """Held, and which request reached the view, in order (its ``who`` attribute)."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []

    def view(self, request: HttpRequest) -> HttpResponse:
        self.order.append(request.who)  # type: ignore[attr-defined]
        return super().view(request)

    def start(self, middleware: Callable[[HttpRequest], HttpResponse], request: HttpRequest) -> None:
        thread = threading.Thread(target=lambda: self.answers.append(middleware(request).status_code))
        thread.start()
        self.threads.append(thread)


def _named(request: HttpRequest, who: str) -> HttpRequest:
    request.who = who  # type: ignore[attr-defined]
    return request


def _low_priority_runs(who: str, ran: str = "turn") -> float:
    return metrics.low_priority_total.labels(who=who, ran=ran)._value.get()


@pytest.fixture
def gate(settings):
    """One low-priority request at a time, and a wait long enough to be seen."""
    settings.VOUCH_LOW_PRIORITY_AT_ONCE = 1
    settings.VOUCH_LOW_PRIORITY_WAIT_MS = 5000
    settings.VOUCH_ANONYMOUS_IN_FLIGHT = 3
    settings.VOUCH_ACCOUNT_IN_FLIGHT = 2
    return settings


def test_people_not_signed_in_run_one_at_a_time_and_a_member_is_not_gated(gate, limits_clock):
    """While one request of someone not signed in runs, the next waits for its turn; a
    signed-in member's request runs at once beside it."""
    held = Entered()
    client_limits = ClientLimitsMiddleware(AccountLimitsMiddleware(held.view))
    member = make_user("member-priority@example.com")
    try:
        held.hold(client_limits, [_named(_anonymous("192.0.2.1"), "first")])
        held.start(client_limits, _named(_anonymous("203.0.113.1"), "second"))
        assert not held.entered.acquire(timeout=0.5)  # waiting for its turn
        held.start(client_limits, _named(_member(member), "member"))
        assert held.entered.acquire(timeout=5)
        assert held.order == ["first", "member"]
    finally:
        held.finish()
    assert held.order == ["first", "member", "second"]
    assert held.answers == [200, 200, 200]
    assert limits_middleware.in_flight.held == {}
    assert priority.gate.running == 0


def test_an_account_refused_for_too_many_at_once_is_gated_for_ten_seconds(gate, limits_clock):
    """An account that sent more at once than its cap loses its standing: its requests wait
    their turn behind those not signed in, while another member's run at once; ten
    seconds later it runs at once again."""
    account_limits = AccountLimitsMiddleware
    flooder, other = make_user("flooder-priority@example.com"), make_user("other-priority@example.com")
    held = Entered()
    middleware = account_limits(held.view)
    try:
        # In good standing, two at once run at once; a third is refused.
        held.hold(middleware, [_named(_member(flooder), "flooder"), _named(_member(flooder), "flooder")])
        assert middleware(_member(flooder)).status_code == 429
    finally:
        held.finish()
    assert held.answers == [200, 200]

    held = Entered()
    client_limits = ClientLimitsMiddleware(account_limits(held.view))
    before = _low_priority_runs("account")
    try:
        held.hold(client_limits, [_named(_anonymous("192.0.2.1"), "anonymous")])
        held.start(client_limits, _named(_member(flooder), "flooder"))
        assert not held.entered.acquire(timeout=0.5)  # the flooder waits its turn
        held.start(client_limits, _named(_member(other), "other"))
        assert held.entered.acquire(timeout=5)
        assert held.order == ["anonymous", "other"]
    finally:
        held.finish()
    assert held.order == ["anonymous", "other", "flooder"]
    assert held.answers == [200, 200, 200]
    assert _low_priority_runs("account") == before + 1

    limits_clock[0] += limits.BURST_WINDOW + 1
    held = Entered()
    client_limits = ClientLimitsMiddleware(account_limits(held.view))
    try:
        held.hold(client_limits, [_named(_anonymous("192.0.2.1"), "anonymous")])
        held.start(client_limits, _named(_member(flooder), "flooder"))
        assert held.entered.acquire(timeout=5)  # in good standing again: no turn to wait for
    finally:
        held.finish()
    assert held.order == ["anonymous", "flooder"]
    assert _low_priority_runs("account") == before + 1
    assert limits_middleware.in_flight.held == {}


def test_a_request_that_waited_in_vain_runs_anyway(gate, limits_clock):
    """The gate orders requests, it refuses nobody: past the wait, the next one runs beside."""
    gate.VOUCH_LOW_PRIORITY_WAIT_MS = 100
    held = Entered()
    client_limits = ClientLimitsMiddleware(AccountLimitsMiddleware(held.view))
    before = _low_priority_runs("anonymous", "anyway")
    try:
        held.hold(client_limits, [_named(_anonymous("192.0.2.1"), "first")])
        held.start(client_limits, _named(_anonymous("203.0.113.1"), "second"))
        assert held.entered.acquire(timeout=5)
    finally:
        held.finish()
    assert held.answers == [200, 200]
    assert _low_priority_runs("anonymous", "anyway") == before + 1


class TrickledBody:
    """A request body that arrives only when released (a client sending it slowly)."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.reading = threading.Event()
        self.arrived = threading.Event()

    def read(self, size: int = -1) -> bytes:
        self.reading.set()
        assert self.arrived.wait(10)
        body, self.body = self.body, b""
        return body

    def close(self) -> None:
        pass


def test_a_slow_body_is_read_before_its_turn(gate, limits_clock):
    """A post whose body trickles in holds its places while it arrives, not the turn: the
    next request of someone not signed in runs at once."""
    held = Entered()
    client_limits = ClientLimitsMiddleware(AccountLimitsMiddleware(held.view))
    slow = RequestFactory().post(LOGIN, "login=someone", "application/x-www-form-urlencoded", REMOTE_ADDR="192.0.2.1")
    slow.user = AnonymousUser()
    trickled = TrickledBody(b"login=someone")
    slow._stream = trickled  # type: ignore[attr-defined]
    try:
        held.start(client_limits, _named(slow, "slow"))
        assert trickled.reading.wait(5)
        held.hold(client_limits, [_named(_anonymous("203.0.113.1"), "quick")])
        trickled.arrived.set()
        assert held.entered.acquire(timeout=0.5) is False  # the slow one now waits its turn
    finally:
        held.finish()
    assert held.order == ["quick", "slow"]
    assert held.answers == [200, 200]


def test_the_session_of_an_account_without_standing_waits_before_it_is_read(gate, limits_clock):
    """Once an account lost its standing, a request on the same session waits its turn in
    the early middleware, before any session, user or company is looked up (here there is
    no later middleware at all); another member's session does not."""
    flooder, other = make_user("flooder-session@example.com"), make_user("other-session@example.com")
    held = Held()
    account_limits = AccountLimitsMiddleware(held.view)
    try:
        held.hold(account_limits, [_member(flooder), _member(flooder)])
        assert account_limits(_member(flooder)).status_code == 429
    finally:
        held.finish()

    held = Entered()
    client_only = ClientLimitsMiddleware(held.view)
    try:
        held.hold(client_only, [_named(_anonymous("192.0.2.1"), "anonymous")])
        held.start(client_only, _named(_member(flooder), "flooder"))
        assert not held.entered.acquire(timeout=0.5)
        held.start(client_only, _named(_member(other), "other"))
        assert held.entered.acquire(timeout=5)
    finally:
        held.finish()
    assert held.order == ["anonymous", "other", "flooder"]
    assert limits_middleware.in_flight.held == {}

"""Brute-force defence for password sign-in (P3, P13: docs/security/promises.md#p13).

Every password sign-in passes through :func:`before_password_check` (called by
``AccountAdapter.pre_authenticate``) *before* any password hash, real or dummy, is
computed, and is refused there cheaply when a throttle applies: a few cache reads and one
indexed user lookup, no writes. What is counted:

- **per account** (the typed email, through a keyed hash, whether an account exists or
  not, so answers do not reveal which addresses are registered): 5 free failures, then
  a growing delay (15 s, 30 s, 1 min, ... up to 1 h) before the next guess. This is the
  defence against *distributed guessing*: it does not matter how many addresses the
  guesses come from;
- **per client address**: 20 free failures, then growing delays; plus at most 10
  *different* accounts tried from one address per hour (*credential stuffing*);
- **100 consecutive failures, ever** (NIST SP 800-63B 5.2.2): kept in the database
  (``AccountState.consecutive_failures``, so a cache flush does not reset it) and reserved
  *before* each password check with one conditional UPDATE, so even concurrent guesses
  cannot exceed it. The 100th failure turns password sign-in off
  (``password_disabled_at``) until the password is reset through the account's email; the
  owner is emailed a reset link.

Once delays are active for a scope, attempts in it are also serialised (a cache "gate",
one guess in flight at a time), so a burst of concurrent requests cannot slip through
the gap between the check and the recorded failure.

The real user is not locked out by an attacker: a browser that has completed a sign-in
to the account before (``vouch.guard.devices``) skips the per-account and per-address
throttles and has its own (5 free failures, growing delays); from any other browser
the owner can use the unlock link emailed when the account first gets throttled, which
makes that browser a known device (``vouch.guard.unlock``).

Counters live in the cache (Redis in production, the database cache on the embedded
default): the decision must be fast and shared by every worker. They use the cache alias
"guard", whose reads do not degrade to a miss when Redis is out: every check here then
raises, and the person gets the 503 page "sign-in is briefly unavailable" (fail closed).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import caches
from django.db.models import F
from django.forms import ValidationError
from django.http import HttpRequest
from django.utils import timezone
from django.utils.connection import ConnectionProxy

from vouch.accounts.models import User
from vouch.audit.events import PLATFORM, record
from vouch.audit.models import EventAction, Outcome
from vouch.core.db import ComposedSQL, Names
from vouch.core.network import client_ip as _client_ip
from vouch.core.network import network_of as _network_of
from vouch.guard import devices, unlock
from vouch.guard.models import AccountState

log = logging.getLogger("vouch.guard.throttle")

# Strict: a Redis that does not answer raises here rather than reading as "no failures".
cache = ConnectionProxy(caches, "guard")

PASSWORD_FAILURE_CAP = 100
BASE_DELAY = 15  # seconds: the first delay; each further failure doubles it
MAX_DELAY = 3600
FAILURE_MEMORY = 24 * 3600  # a scope's failure count is forgotten after a quiet day
GATE_SECONDS = 30  # longest a guess can hold its scope's gate (a hash takes ~0.1 s)
DISTINCT_ACCOUNTS_LIMIT = 10
DISTINCT_WINDOW = 3600
UNLOCK_MAIL_EVERY = 3600
EVENT_WINDOW = 60  # at most one authn_login_fail event per account per minute
LOCK_EVENT_WINDOW = 600  # at most one authn_login_lock event per scope per 10 minutes


@dataclass(frozen=True)
class Scope:
    name: str
    free: int  # failures before delays start


ACCOUNT = Scope("account", free=5)
ADDRESS = Scope("address", free=20)
DEVICE = Scope("device", free=5)


def now() -> float:
    """The throttle's clock (tests replace it)."""
    return time.time()


def enabled() -> bool:
    # A benchmark switch (VOUCH_BENCH_PROTECTIONS_OFF), never honoured in production.
    return not getattr(settings, "VOUCH_PROTECTIONS_OFF", False)


def delay_for(failures: int, scope: Scope) -> int:
    """Seconds to wait after ``failures`` failures in ``scope`` (0 while free)."""
    if failures < scope.free:
        return 0
    return int(min(MAX_DELAY, BASE_DELAY * 2 ** min(failures - scope.free, 20)))


class Throttled(ValidationError):
    """Raised before the password check; shown as the login form's error."""

    def __init__(self, reason: str, retry_after: float = 0) -> None:
        self.reason = reason
        self.retry_after = max(0, int(math.ceil(retry_after)))
        super().__init__(message_for(reason, self.retry_after), code="too_many_login_attempts")


def message_for(reason: str, retry_after: int) -> str:
    if reason == "password_disabled":
        return (
            "Too many failed sign-in attempts: signing in with this password is turned off until the "
            "password is reset. Use “Forgot your password?” to reset it through the account's email."
        )
    minutes = max(1, math.ceil(retry_after / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return (
        f"Too many sign-in attempts. Try again in {minutes} {unit}. If this is your account, you can "
        "still sign in from a browser you have used before, or with the unlock link emailed to the "
        "account's address."
    )


def email_key(email: str) -> str:
    """A keyed hash of the typed address: counters never hold the address itself."""
    normalised = (email or "").strip().lower()
    return hmac.new(settings.SECRET_KEY.encode(), b"bf:" + normalised.encode(), hashlib.sha256).hexdigest()[:32]


def client_address(request: HttpRequest) -> str:
    return _address_text(_client_ip(request))


def _address_text(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> str:
    return "unknown" if address is None else str(address)


def _k(*parts: str) -> str:
    return "bf:" + ":".join(parts)


def _scope_key(scope: Scope, attempt: Attempt) -> str:
    if scope is ACCOUNT:
        return _k("a", attempt.account)
    if scope is ADDRESS:
        return _k("i", attempt.ip)
    return _k("d", attempt.device or "-", attempt.account)


@dataclass
class Attempt:
    """What :func:`before_password_check` decided, for the calls after the check."""

    account: str = ""
    ip: str = ""
    user_id: int | None = None
    device: str | None = None  # set when this browser is a known device of the account
    scopes: tuple[Scope, ...] = ()
    failures: dict[str, int] = field(default_factory=dict)
    gates: list[str] = field(default_factory=list)
    reserved: bool = False
    active: bool = True


def _compose_lookup(n: Names) -> str:
    from vouch.accounts.models import User
    from vouch.guard.models import AccountState

    failures = n.columns(AccountState, "consecutive_failures", "password_disabled_at", "held_until", prefix="s.")
    user_id = n.column(User, "id", prefix="u.")
    return (
        f"SELECT {user_id}, {failures} FROM {n.table(User)} u "  # noqa: S608 (names from the models)
        f"LEFT JOIN {n.table(AccountState)} s ON {n.column(AccountState, 'user', prefix='s.')} = {user_id} "
        f"WHERE LOWER({n.column(User, 'email', prefix='u.')}) = %s LIMIT 1"
    )


# The sign-in's account and its failure state (vouch.core.db.ComposedSQL).
LOOKUP = ComposedSQL(_compose_lookup)


def _lookup(email: str) -> tuple[int | None, int, bool, float]:
    """(user id, consecutive failures, password disabled, held until) for the typed
    email: one query
    on the unique LOWER(email) index, done for unknown addresses alike. Plain SQL: it runs
    on every sign-in attempt, refused ones included, and the ORM's query building cost
    more than the query itself."""
    row = LOOKUP.fetchone([(email or "").strip().lower()], using="default")
    if row is None:
        return None, 0, False, 0.0
    return row[0], row[1] or 0, row[2] is not None, row[3] or 0.0


def before_password_check(request: HttpRequest, email: str) -> Attempt:
    """Decide whether this sign-in may reach the password check; raise :class:`Throttled` if not.

    Call :func:`after_password_check` once the check is done (in a ``finally``)."""
    if not enabled():
        return Attempt(active=False)
    return account_for(request, decide(request, email))


def decide(request: HttpRequest, email: str) -> Attempt:
    """The decision alone: reads only (one indexed user lookup, one cache read of every
    counter, a device lookup when the browser has a valid device cookie)."""
    attempt = Attempt(account=email_key(email), ip=client_address(request))
    user_id, db_failures, disabled, held_until = _lookup(email)
    attempt.user_id = user_id
    digest = devices.device_hash(request)
    if user_id is not None and digest is not None and devices._known(user_id, digest):
        attempt.device = digest
        attempt.scopes = (DEVICE, ACCOUNT)  # ACCOUNT only for the 100 cap, never for delays
    else:
        attempt.scopes = (ACCOUNT, ADDRESS)
    keys = {scope.name: _scope_key(scope, attempt) for scope in attempt.scopes}
    distinct = attempt.device is None
    wanted = [f"{key}:f" for key in keys.values()] + [f"{key}:u" for key in keys.values()]
    if distinct:
        wanted += [_k("ia", attempt.ip, "n"), _k("ia", attempt.ip, "s"), _k("ia", attempt.ip, attempt.account)]
    values = cache.get_many(wanted)
    moment = now()

    account_failures = max(int(values.get(f"{keys['account']}:f") or 0), db_failures)
    if disabled or account_failures >= PASSWORD_FAILURE_CAP:
        raise Throttled("password_disabled")
    for scope in attempt.scopes:
        key = keys[scope.name]
        failures = int(values.get(f"{key}:f") or 0)
        if scope is ACCOUNT:
            failures = account_failures
        attempt.failures[scope.name] = failures
        if scope is ACCOUNT and attempt.device is not None:
            continue  # a known device is not held back by other people's guesses
        until = float(values.get(f"{key}:u") or 0)
        if scope is ACCOUNT:
            # The floor kept in the database: a Redis that lost its data (a flush, a
            # restart without persistence) does not give an account fresh guesses.
            until = max(until, held_until)
        if until > moment:
            raise Throttled(scope.name, until - moment)
    if distinct and not values.get(_k("ia", attempt.ip, attempt.account)):
        tried = int(values.get(_k("ia", attempt.ip, "n")) or 0)
        started = float(values.get(_k("ia", attempt.ip, "s")) or moment)
        if tried >= DISTINCT_ACCOUNTS_LIMIT and started + DISTINCT_WINDOW > moment:
            raise Throttled("accounts_from_address", started + DISTINCT_WINDOW - moment)

    return attempt


def account_for(request: HttpRequest, attempt: Attempt) -> Attempt:
    """The writes of an allowed attempt, still before the password check: the gates of
    throttled scopes, the distinct-accounts count and the database reservation."""
    keys = {scope.name: _scope_key(scope, attempt) for scope in attempt.scopes}
    distinct = attempt.device is None
    user_id = attempt.user_id
    moment = now()
    for scope in attempt.scopes:
        if scope is ACCOUNT and attempt.device is not None:
            continue
        if attempt.failures[scope.name] + 1 >= scope.free:
            gate = f"{keys[scope.name]}:g"
            if not cache.add(gate, 1, timeout=GATE_SECONDS):
                release(attempt)
                raise Throttled(scope.name, delay_for(attempt.failures[scope.name], scope) or BASE_DELAY)
            attempt.gates.append(gate)
    if distinct:
        _count_distinct(request, attempt, moment)
    if user_id is not None:
        if not _reserve(user_id):
            release(attempt)
            raise Throttled("password_disabled")
        attempt.reserved = True
        # Every guess that reaches the password check, at debug: at info an operator would
        # get a line for every ordinary sign-in. Failures and holds are logged at info and
        # warning (password_failed, _lock_event).
        log.debug("bruteforce password_check user=%s", user_id)
    return attempt


def _count_distinct(request: HttpRequest, attempt: Attempt, moment: float) -> None:
    seen = _k("ia", attempt.ip, attempt.account)
    if not cache.add(seen, 1, timeout=DISTINCT_WINDOW):
        return
    count_key, start_key = _k("ia", attempt.ip, "n"), _k("ia", attempt.ip, "s")
    if cache.add(count_key, 1, timeout=DISTINCT_WINDOW):
        cache.set(start_key, moment, timeout=DISTINCT_WINDOW)
        return
    try:
        tried = cache.incr(count_key)
    except ValueError:
        cache.set(count_key, 1, timeout=DISTINCT_WINDOW)
        return
    if tried == DISTINCT_ACCOUNTS_LIMIT:
        _lock_event(request, attempt, "accounts_from_address", _k("ia", attempt.ip), tried, DISTINCT_WINDOW)


def distinct_accounts_from(ip: str) -> int:
    """How many different accounts this address has tried to sign in to in the last hour
    (the risk engine's "one address trying many accounts" signal)."""
    return int(cache.get(_k("ia", ip, "n")) or 0)


def _reserve(user_id: int) -> bool:
    """Count this guess before the check, atomically and only below the cap."""

    query = AccountState.objects.filter(
        user_id=user_id, consecutive_failures__lt=PASSWORD_FAILURE_CAP, password_disabled_at__isnull=True
    )
    if query.update(consecutive_failures=F("consecutive_failures") + 1):
        return True
    _, created = AccountState.objects.get_or_create(user_id=user_id)
    return created and bool(query.update(consecutive_failures=F("consecutive_failures") + 1))


def release(attempt: Attempt) -> None:
    if attempt.gates:
        cache.delete_many(attempt.gates)
        attempt.gates = []


def password_succeeded(request: HttpRequest, attempt: Attempt, user) -> None:
    """The password was right: the consecutive count starts again (NIST), and a known
    device's own counter is cleared. Shared counters (account, address) are left alone:
    wiping them would let an attacker who knows one password reset another's delays."""
    if not attempt.active:
        return

    AccountState.objects.filter(user_id=user.pk).update(consecutive_failures=0)
    if attempt.device is not None:
        key = _scope_key(DEVICE, attempt)
        cache.delete_many([f"{key}:f", f"{key}:u"])


def password_failed(request: HttpRequest, attempt: Attempt) -> None:
    """Count a failed check in every scope; start or lengthen delays; at the cap, turn the
    password off and tell the owner."""
    if not attempt.active:
        return
    # Logged (and flushed) before the response is sent: the attack test counts these.
    log.info("bruteforce password_failed user=%s", attempt.user_id)
    moment = now()
    for scope in attempt.scopes:
        key = _scope_key(scope, attempt)
        failures = _incr(f"{key}:f", FAILURE_MEMORY)
        if scope is ACCOUNT:
            failures = max(failures, attempt.failures.get("account", 0) + 1)
            if attempt.device is not None:
                continue  # counted, but a known device's failures set no delay for others
        wait = delay_for(failures, scope)
        if wait and scope is ACCOUNT and attempt.reserved:
            _keep_floor(attempt.user_id, moment + wait)  # type: ignore[arg-type]  # typing debt: an Optional not narrowed here
        if wait:
            cache.set(f"{key}:u", moment + wait, timeout=wait + 60)
            _lock_event(request, attempt, scope.name, key, failures, wait)
            if scope is ACCOUNT and attempt.user_id is not None and failures == ACCOUNT.free:
                _send_unlock_mail(request, attempt.user_id)
    if attempt.reserved:
        _disable_at_cap(request, attempt.user_id)  # type: ignore[arg-type]  # typing debt: an Optional not narrowed here


def _keep_floor(user_id: int, until: float) -> None:
    """Keep the account's hold in the database too, beside its count (see decide)."""

    AccountState.objects.filter(user_id=user_id).update(held_until=until)


def _incr(key: str, timeout: int) -> int:
    if cache.add(key, 1, timeout=timeout):
        return 1
    try:
        value = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=timeout)
        return 1
    cache.touch(key, timeout)
    return value


def after_password_check(attempt: Attempt) -> None:
    release(attempt)


def _disable_at_cap(request: HttpRequest, user_id: int) -> None:
    disabled = AccountState.objects.filter(
        user_id=user_id, consecutive_failures__gte=PASSWORD_FAILURE_CAP, password_disabled_at__isnull=True
    ).update(password_disabled_at=timezone.now())
    if not disabled:
        return
    log.warning("bruteforce password_disabled user=%s failures=%s", user_id, PASSWORD_FAILURE_CAP)

    user = User.objects.get(pk=user_id)
    record(
        EventAction.AUTHN_LOGIN_LOCK,
        request=request,
        actor=None,
        company=PLATFORM,
        target=f"user:{user_id}",
        outcome=Outcome.FAILURE,
        details={"scope": "account", "reason": "password_disabled", "failures": PASSWORD_FAILURE_CAP},
    )

    unlock.send_password_disabled_mail(request, user)


def _lock_event(request: HttpRequest, attempt: Attempt, scope: str, key: str, failures: int, wait: int) -> None:
    """authn_login_lock, at most once per scope per LOCK_EVENT_WINDOW (see sample_failure_event)."""
    if not cache.add(f"{key}:ev", 1, timeout=LOCK_EVENT_WINDOW):
        return
    log.warning("bruteforce hold scope=%s user=%s failures=%s retry_after_s=%s", scope, attempt.user_id, failures, wait)

    record(
        EventAction.AUTHN_LOGIN_LOCK,
        request=request,
        actor=None,
        company=PLATFORM,
        target=f"user:{attempt.user_id}" if attempt.user_id and scope != "address" else "",
        outcome=Outcome.FAILURE,
        details={"scope": scope, "failures": failures, "retry_after_s": wait},
    )


def sample_failure_event(email: str) -> int | None:
    """Whether to record this authn_login_fail event: None to skip it, else how many
    failures on the account went unrecorded since the last recorded one.

    Why sample: the event log is hash-chained, so every append takes one installation-wide
    lock; recording every guess of a flood would make that lock the bottleneck of the
    whole site. The first failure on an account in each minute is recorded (with the
    count of those skipped before it), and every lock and password turn-off is recorded
    as authn_login_lock, so the log still shows when, where from and how hard an account
    was attacked. Refused guesses (throttled before the password check) write nothing."""
    if not enabled():
        return 0
    account = email_key(email)
    skipped_key = _k("ev", account, "n")
    if cache.add(_k("ev", account), 1, timeout=EVENT_WINDOW):
        skipped = int(cache.get(skipped_key) or 0)
        if skipped:
            cache.delete(skipped_key)
        return skipped
    _incr(skipped_key, FAILURE_MEMORY)
    return None


def return_skipped(email: str, count: int) -> None:
    """Give back a count that :func:`sample_failure_event` handed out for an event that
    was then not recorded (its network had one this minute): the account's next
    recorded failure carries it."""
    if count <= 0:
        return
    key = _k("ev", email_key(email), "n")
    if not cache.add(key, count, timeout=FAILURE_MEMORY):
        try:
            cache.incr(key, count)
        except ValueError:
            cache.set(key, count, timeout=FAILURE_MEMORY)


def _send_unlock_mail(request: HttpRequest, user_id: int) -> None:
    if not cache.add(_k("um", str(user_id)), 1, timeout=UNLOCK_MAIL_EVERY):
        return

    unlock.send_unlock_mail(request, User.objects.get(pk=user_id))


def forget_account(user) -> None:
    """After a password reset: the password works again and the account's counters restart."""

    AccountState.objects.filter(user_id=user.pk).update(
        consecutive_failures=0, password_disabled_at=None, held_until=None
    )
    key = _k("a", email_key(user.email))
    cache.delete_many([f"{key}:f", f"{key}:u", f"{key}:g"])


def on_password_reset(sender, request, user, **kwargs) -> None:
    forget_account(user)


# -- fixed allowances, counted atomically ----------------------------------------------


def take_slot(key: str, limit: int, timeout: int) -> int:
    """Take one of ``limit`` numbered slots under ``key`` for ``timeout`` seconds; return
    its number (1 to ``limit``), or 0 when every slot is taken.

    For an allowance that must never be exceeded, even by concurrent requests (each
    emailed code may be compared at most N times). Hand-written on ``cache.add`` rather
    than ``cache.incr``: add is atomic on both caches Vouch uses (Redis SET NX; the
    database cache's INSERT on a unique key, under BEGIN IMMEDIATE on SQLite), while
    Django's database cache implements incr as a read then a write, so parallel
    requests could all read the same count. One read finds the first free slot, so a
    take is usually one read and one add."""
    keys = [f"{key}:{n}" for n in range(1, limit + 1)]
    taken = cache.get_many(keys)
    for n, slot in enumerate(keys, start=1):
        if slot not in taken and cache.add(slot, 1, timeout=timeout):
            return n
    return 0


def slots_taken(key: str, limit: int) -> int:
    """How many of ``key``'s slots are taken (a read, for deciding whether to start)."""
    return len(cache.get_many([f"{key}:{n}" for n in range(1, limit + 1)]))


def give_back_slot(key: str, slot: int) -> None:
    if slot:
        cache.delete(f"{key}:{slot}")


# -- other guessable secrets ----------------------------------------------------------
# Codes and links that are not passwords (an emailed one-time code, a verification
# link) get the same shape of defence: growing delays per subject (the account or the
# link's owner) and per client address, checked before the secret is looked at.

CODE_SUBJECT = Scope("code_subject", free=5)
CODE_ADDRESS = Scope("code_address", free=10)
# Failures from one network, all its addresses together: whoever holds an IPv6 /64 (the
# usual assignment to one home or one server) has 2^64 addresses, so a limit per address
# alone would not slow them at all. IPv4 /24 likewise for a small rented range. More free
# failures than one address gets, since the people behind one network are several.
CODE_NETWORK = Scope("code_network", free=50)
# A caller may ask to *defer* an address's or a network's hold (``defer_holds``): a
# private link still opens for its own valid token through a held address or network, so
# one guesser behind a shared or carrier-grade NAT address cannot lock out every candidate
# and referee on it (a 256-bit token is no easier to guess for it). What a hold still
# stops is a flood: once a held scope has had HELD_GUESS_CAP wrong tokens in a minute,
# nothing from it is looked up until that minute ends (or the hold does). People with a
# real link never add to that count; a person mistyping a link adds one.
DEFERRABLE = ("code_address", "code_network")
HELD_GUESS_CAP = 60
HELD_WINDOW = 60


def _code_keys(request: HttpRequest, purpose: str, subject: str) -> list[tuple[Scope, str]]:
    address = _client_ip(request)  # parsed once for both scopes: this runs on every link page
    keys = [(CODE_ADDRESS, _k("c", purpose, "i", _address_text(address)))]
    network = _network_of(address)
    if network is not None:
        keys.append((CODE_NETWORK, _k("c", purpose, "n", network)))
    if subject:
        keys.append((CODE_SUBJECT, _k("c", purpose, "s", email_key(subject))))
    return keys


def check_code(request: HttpRequest, purpose: str, subject: str = "", *, defer_holds: bool = False) -> float:
    """Raise :class:`Throttled` when a guess at a ``purpose`` code for ``subject`` must wait.

    With ``defer_holds``, a hold on the client's address or network does not raise while
    that scope's wrong guesses this minute are under HELD_GUESS_CAP: the hold's remaining
    seconds are returned (0 when none), and the caller refuses every code but a valid
    one, counting each refused one with :func:`held_guess` (and as no failure)."""
    if not enabled():
        return 0
    keys = _code_keys(request, purpose, subject)
    moment = now()
    window = int(moment // HELD_WINDOW)
    wanted = [f"{key}:u" for _, key in keys]
    if defer_holds:
        wanted += [f"{key}:h:{window}" for scope, key in keys if scope.name in DEFERRABLE]
    values = cache.get_many(wanted)
    hold = 0.0
    for scope, key in keys:
        until = float(values.get(f"{key}:u") or 0)
        if until <= moment:
            continue
        if defer_holds and scope.name in DEFERRABLE:
            if int(values.get(f"{key}:h:{window}") or 0) < HELD_GUESS_CAP:
                hold = max(hold, until - moment)
                continue
            # A flood: nothing from this scope is looked up until the minute (or the hold) ends.
            raise Throttled(scope.name, min(until, (window + 1) * HELD_WINDOW) - moment)
        raise Throttled(scope.name, until - moment)
    return hold


def held_guess(request: HttpRequest, purpose: str) -> None:
    """A wrong code refused during a deferred hold: counted toward HELD_GUESS_CAP for the
    client's address and network this minute, and as no failure (the hold stands as it is)."""
    if not enabled():
        return
    window = int(now() // HELD_WINDOW)
    for scope, key in _code_keys(request, purpose, ""):
        if scope.name in DEFERRABLE:
            _incr(f"{key}:h:{window}", 2 * HELD_WINDOW)


def code_failed(request: HttpRequest, purpose: str, subject: str = "") -> None:
    if not enabled():
        return
    moment = now()
    for scope, key in _code_keys(request, purpose, subject):
        wait = delay_for(_incr(f"{key}:f", FAILURE_MEMORY), scope)
        if wait:
            cache.set(f"{key}:u", moment + wait, timeout=wait + 60)


def code_succeeded(request: HttpRequest, purpose: str, subject: str = "") -> None:
    if subject:
        key = _k("c", purpose, "s", email_key(subject))
        cache.delete_many([f"{key}:f", f"{key}:u"])

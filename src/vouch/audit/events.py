"""``record(...)``: Vouch's one way to record a security event.

Every part of Vouch calls this (directly or through ``vouch.audit.receivers``) for
sign-ins, failures, 2FA and password changes, role changes, exports and the like.

Appends are serialized so that concurrent writers never fork the chain: on PostgreSQL
with a transaction-scoped advisory lock, on SQLite by the database's single writer (the
settings open every transaction with BEGIN IMMEDIATE, so the head is read under the
write lock). The append runs in its own transaction, or in a savepoint when the caller
is already inside one: the event then commits or rolls back with the change it
describes. Failures that must survive a rolled-back request (a refused login, a 403)
are recorded where no transaction is open (signal receivers, error handlers).

Each append moves the chain head and seals it with a MAC (``chain.head_mac``), but only
when the head it found was sealed and was the last event's (``_chain_end``)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import uuid
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from vouch.audit import chain, observers, spool
from vouch.audit.models import ChainHead, EventAction, Outcome, SecurityEvent
from vouch.core.diskfull import is_storage_full

log = logging.getLogger("vouch.audit")

DB = DEFAULT_DB_ALIAS  # the control database
# An arbitrary constant naming the chain's advisory lock on PostgreSQL ("vouchaud").
ADVISORY_LOCK_KEY = 0x766F756368617564
USER_AGENT_MAX = 256
TARGET_MAX = 128
DETAIL_VALUE_MAX = 200
DETAILS_MAX_KEYS = 20
# Keys that must never reach the log, whatever a caller passes.
FORBIDDEN_KEY_PARTS = ("password", "token", "secret", "key", "code", "otp", "email")
ALLOWED_KEYS = {"email_hash"}


def email_hash(email: str) -> str:
    """A short keyed hash of an email address: the same address gives the same value
    (so repeated attempts can be correlated), but the address cannot be read back."""
    digest = hmac.new(chain.email_key(), email.strip().lower().encode(), hashlib.sha256).hexdigest()
    return digest[:16]


def _clean_details(details: dict[str, Any] | None) -> dict[str, Any]:
    """Small, flat, JSON-safe details with no secrets or email addresses in them."""
    clean: dict[str, Any] = {}
    for key, value in list((details or {}).items())[:DETAILS_MAX_KEYS]:
        key = str(key)[:40]
        if key not in ALLOWED_KEYS and any(part in key.lower() for part in FORBIDDEN_KEY_PARTS):
            clean[key] = "[redacted]"
            continue
        if value is None or isinstance(value, bool | int):
            clean[key] = value
            continue
        text = str(value)[:DETAIL_VALUE_MAX]
        clean[key] = f"email:{email_hash(text)}" if "@" in text else text
    return clean


def _ip(request) -> str | None:
    # REMOTE_ADDR is already the client's address: RequestContextMiddleware applies
    # X-Forwarded-For from trusted proxies only (vouch.core.proxies).
    raw = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        return None


# Pass ``company=PLATFORM`` for account-level events (sign-in, password, 2FA): they
# belong to the person, not to whichever company happens to be current.
PLATFORM = "platform"


def company_id_of(company) -> uuid.UUID | None:
    if company is None or company == PLATFORM:
        return None
    value = getattr(company, "pk", company)
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _lock_chain(connection) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])
    # SQLite: the transaction began with BEGIN IMMEDIATE (settings), so this connection
    # already holds the database's only write lock. Other vendors are not supported.


def record(
    action: str,
    *,
    request=None,
    actor=None,
    company=None,
    target: str = "",
    outcome: str = Outcome.SUCCESS,
    details: dict[str, Any] | None = None,
) -> SecurityEvent:
    """Append one security event to the chain and return it.

    ``request`` supplies the IP address, user agent, and (unless given) the actor and the
    current company. ``actor`` is a User, ``company`` a Company or its id. ``details``
    is a small flat dict; keys that look like secrets or email addresses are redacted."""
    action = str(action)
    outcome = str(outcome)
    if outcome not in Outcome.values:
        raise ValueError(f"unknown outcome {outcome!r}")
    if action not in EventAction.values:
        log.warning("audit: action %s is not in the vocabulary", action)
    if request is not None:
        if actor is None:
            user = getattr(request, "user", None)
            actor = user if user is not None and user.is_authenticated else None
        if company is None:
            company = getattr(request, "company", None)
    user_agent = request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX] if request is not None else ""
    actor_id = getattr(actor, "pk", None)
    event = SecurityEvent(
        occurred_at=timezone.now(),
        actor_id=actor_id,
        actor_label=f"user:{actor_id}" if actor_id is not None else "",
        company_id=company_id_of(company),
        action=action[:64],
        target=str(target)[:TARGET_MAX],
        ip=_ip(request),
        user_agent=user_agent,
        outcome=outcome,
        details=_clean_details(details),
    )
    if observers._observers:
        observers.notify(
            observers.Occurrence(
                action=event.action,
                outcome=outcome,
                request=request,
                actor_id=actor_id,
                company_id=event.company_id,
                target=event.target,
                details=event.details,
            )
        )
    connection = connections[DB]
    standalone = not connection.in_atomic_block
    summary = action == EventAction.AUDIT_EVENTS_NOT_RECORDED  # the counts themselves: put back, not counted
    try:
        with transaction.atomic(using=DB):
            _append(connection, event)
    except Exception as error:
        # An event of its own (not part of a change that fails with it) that the full
        # disk refused is counted, and recorded once there is room (vouch.audit.spool).
        if standalone and not summary and is_storage_full(error):
            spool.count(event.action, event.outcome)
            error.vouch_audit_counted = True  # type: ignore[attr-defined]  # an attribute set at run time
        raise
    if standalone and not summary and spool.pending():
        try:
            spool.flush()
        except Exception:  # kept for the next append or /healthz
            log.exception("audit: could not record the events counted while the storage was full")
    return event


def _append(connection, event: SecurityEvent) -> None:
    _lock_chain(connection)
    head = ChainHead.objects.using(DB).filter(pk=1).first()
    seq, prev_hash, sealed = _chain_end(head)
    event.seq = seq + 1
    event.prev_hash = prev_hash
    event.hash = chain.compute(event)
    event.save(using=DB)
    mac = chain.head_mac(event.seq, event.hash) if sealed else ""
    if head is None:
        ChainHead(pk=1, seq=event.seq, hash=event.hash, mac=mac).save(using=DB, force_insert=True)
    else:
        ChainHead.objects.using(DB).filter(pk=1).update(seq=event.seq, hash=event.hash, mac=mac)


def count_unrecorded(error: BaseException, action: str, outcome: str) -> None:
    """For callers whose own bookkeeping failed before ``record`` ran: an event refused by a
    full disk is counted once (``record`` marks those it counted itself)."""
    if is_storage_full(error) and not getattr(error, "vouch_audit_counted", False):
        spool.count(str(action), str(outcome))
        error.vouch_audit_counted = True  # type: ignore[attr-defined]  # an attribute set at run time


def _chain_end(head: ChainHead | None) -> tuple[int, str, bool]:
    """Where the next event goes (after this seq and hash), and whether the new head may be
    sealed with a MAC: only when the head is one Vouch wrote and is the last event's.

    A head that fails is not re-sealed (or the next event would launder a rewind: the
    mark stays for ``vouch audit verify``), and appending still works, from the higher of
    the head and the last event so seq never collides: security events are not lost."""
    last = SecurityEvent.objects.using(DB).order_by("-seq").values_list("seq", "hash").first()
    tip = last or (0, chain.GENESIS)
    if head is None:
        if last is None:
            return (*tip, True)  # an empty log: a new installation or a flush (tests)
    elif chain.head_is_authentic(head) and (head.seq, head.hash) == tip:
        return (*tip, True)
    log.error("audit: the chain head was changed outside Vouch; recording anyway, run `vouch audit verify`")
    if head is not None and head.seq > tip[0]:
        return head.seq, head.hash, False
    return (*tip, False)


def record_refusal(request, *, reason: str) -> SecurityEvent | None:
    """An ``authz_fail`` for a refused request (403 from the policy, or a CSRF failure).

    The target is the route's name, never the raw path (which may hold a token). A
    refusal that anyone can cause without signing in (every CSRF failure: a forged form
    arrives with whatever cookies the browser has; a policy refusal of a visitor who is
    not signed in) is sampled (``vouch.audit.sampling``): it must not let anyone append
    to the chained log without limit."""
    match = getattr(request, "resolver_match", None)
    target = (match.view_name if match else "") or "unknown"
    user = getattr(request, "user", None)
    signed_in = user is not None and user.is_authenticated
    fields = {
        "actor": user if signed_in else None,
        "target": f"route:{target}",
        "outcome": Outcome.BLOCKED,
        "details": {"reason": reason, "method": request.method[:10]},
    }
    if reason == "csrf" or not signed_in:
        # imported here: audit.sampling imports this module (cycle inside the app)
        from vouch.audit.sampling import record_sampled

        return record_sampled(EventAction.AUTHZ_FAIL, request=request, kind=f"authz_fail:{reason}", **fields)  # type: ignore[arg-type]  # mypy matches the ** mapping against every keyword parameter
    try:
        return record(EventAction.AUTHZ_FAIL, request=request, **fields)  # type: ignore[arg-type]  # mypy matches the ** mapping against every keyword parameter
    except Exception as error:  # the refusal must still be answered with its 403, not a 500
        if is_storage_full(error):  # counted by record()
            log.warning("audit: a refused request was not recorded: the storage is full")
        else:
            log.exception("audit: could not record a refused request")
        return None

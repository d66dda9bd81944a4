"""Security events that anyone can cause without signing in, sampled.

Why: every event is appended to the hash-chained log under one installation-wide lock
(on the embedded default, the control database's only write lock, which sessions,
throttle counters and link bookkeeping also wait on). A client that is not signed in
(a CSRF failure, a refused private link, a refused page) must not be able to append
without limit. So, as sign-in failures already are (``throttle.sample_failure_event``):

- the first event of a *kind* from a *source* (the client's network: IPv4 /24, IPv6 /64,
  so a /64's 2^64 addresses are one source) in each minute is recorded at once;
- the others of that minute are counted in the cache, not recorded;
- the count is never lost: the first recorded event of that kind and source two
  minutes later carries it (``not_recorded``), or, when none comes, a task queued with
  the first event records it alone (``not_recorded``, with ``network``) once that
  minute is well over. A minute's count is taken exactly once (``cache.add``), and only
  after the minute has ended, so nothing counted in it is taken twice or left out.

So a flood from one source adds at most one event per kind per minute, plus one at its
end, each telling how many it stands for. Counters live in the cache (Redis in
production), so a refused request that is not recorded costs no database write there.

And a refusal that is only counted costs no cache write either, on any path: each server
process keeps the counts of the last ``VOUCH_SAMPLING_BATCH_SECONDS`` (half a second) in
memory and adds them to the cache together (:class:`Batch`: at most one write per
counter and half second, from a timer, and always before a minute's count is taken), and
remembers which minutes it knows are taken (no read either). On the embedded default a
cache write is a write transaction on the control database, which every process waits
on: one per refused request was most of what a flood cost. The price: a count is in the
cache up to half a second late, and a process that dies loses at most that much."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django_tasks import task

from vouch.audit import observers
from vouch.audit.events import PLATFORM, company_id_of, count_unrecorded, record
from vouch.audit.models import EventAction, Outcome, SecurityEvent
from vouch.core.diskfull import is_storage_full
from vouch.core.network import client_network

log = logging.getLogger("vouch.audit")

INTERVAL = 60  # seconds: one recorded event per kind and source in each
# A minute's count is taken by the event two minutes on, or by its flush task then.
SETTLE_WINDOWS = 2
FLUSH_GRACE = 5  # seconds after that before the task looks, so the next event goes first
KEEP = 3600  # seconds the counters are kept: a worker may be late (or restarting)
MAX_KNOWN = 10_000  # minutes known taken one process remembers before it starts again


def now() -> float:
    """The sampling's clock (tests replace it)."""
    return time.time()


def enabled() -> bool:
    # The benchmark switch (VOUCH_BENCH_PROTECTIONS_OFF) that turns the throttles off too
    # (vouch.guard.throttle.enabled); never honoured in production.
    return not getattr(settings, "VOUCH_PROTECTIONS_OFF", False)


def source_of(request) -> str:
    return client_network(request) or "unknown"


def _base(action: str, kind: str, source: str) -> str:
    digest = hashlib.sha256(f"{action}|{kind}|{source}".encode()).hexdigest()[:32]
    return f"au:s:{digest}"


def _claim(base: str, window: int) -> int:
    """What window ``window`` counted and did not record, taken once; 0 after that."""
    batch.flush()  # this process's counts first: the minute's count must be whole
    if not cache.add(f"{base}:c:{window}", 1, timeout=KEEP):
        return 0
    return int(cache.get(f"{base}:n:{window}") or 0)


def _count(key: str, count: int = 1) -> None:
    # incr first: in a flood the counter exists, and on the database cache every add
    # (even one that fails) is a write with its cull check.
    try:
        cache.incr(key, count)
    except ValueError:  # the first one skipped in its minute (or it expired)
        if not cache.add(key, count, timeout=KEEP):
            cache.incr(key, count)


class Batch:
    """This process's counts not yet added to the cache, and the minutes it knows are
    taken (see the module)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.timer: threading.Timer | None = None
        self.known: set[str] = set()

    def add(self, key: str) -> None:
        seconds = float(getattr(settings, "VOUCH_SAMPLING_BATCH_SECONDS", 0.5))
        if seconds <= 0:
            _count(key)
            return
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            if self.timer is None:
                self.timer = threading.Timer(seconds, self._from_timer)
                self.timer.daemon = True
                self.timer.start()

    def flush(self) -> None:
        """Add every count kept here to the cache (a count the cache refuses is logged)."""
        with self.lock:
            counts, self.counts = self.counts, {}
            timer, self.timer = self.timer, None
        if timer is not None:
            timer.cancel()
        for key, count in counts.items():
            try:
                _count(key, count)
            except Exception:
                log.exception("audit: %d sampled events not recorded could not be counted", count)

    def _from_timer(self) -> None:
        try:
            self.flush()
        finally:
            connections.close_all()  # this thread's own: it ends here

    def reset(self) -> None:
        """Forget what this process kept (tests: their cache is emptied between them)."""
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()
            self.counts, self.timer, self.known = {}, None, set()

    def knows_taken(self, key: str) -> bool:
        return key in self.known

    def taken(self, key: str) -> None:
        with self.lock:
            if len(self.known) >= MAX_KNOWN:
                self.known = set()
            self.known.add(key)


batch = Batch()


def _first_in(base: str, window: int) -> bool:
    """Whether this is the first event of ``base`` in ``window``, for every process. A
    read first: in a flood the minute is taken, and on the database cache an add, even
    one that fails, is a write (with its cull check) under the database's write lock. A
    minute this process knows is taken is not read again."""
    key = f"{base}:e:{window}"
    if batch.knows_taken(key):
        return False
    first = cache.get(key) is None and cache.add(key, 1, timeout=KEEP)
    batch.taken(key)  # by this request or another: taken now either way
    return first


def record_sampled(
    action: str, *, request, kind: str, details: dict[str, Any] | None = None, **fields
) -> SecurityEvent | None:
    """``record(action, request=request, ...)``, sampled by ``kind`` and the request's
    source (see the module). Returns the event, or None when it was only counted. Never
    raises: the caller's refusal must still be answered."""
    try:
        if not enabled():  # the benchmark switch: every event, as before
            return record(action, request=request, details=details, **fields)
        source = source_of(request)
        base = _base(action, kind, source)
        window = int(now() // INTERVAL)
        if not _first_in(base, window):
            batch.add(f"{base}:n:{window}")
            if observers._observers:  # counted, not recorded: its observers still hear of it
                _tell_observers(action, request, details, fields)
            return None
        details = dict(details or {})
        carried = _claim(base, window - SETTLE_WINDOWS)
        if carried:
            details["not_recorded"] = carried
        try:
            event = record(action, request=request, details=details, **fields)
        except Exception:
            if carried:  # the count it carried is not lost with it: that minute's flush takes it
                cache.delete(f"{base}:c:{window - SETTLE_WINDOWS}")
            raise
        _queue_flush(str(action), kind, source, window)
        return event
    except Exception as error:
        count_unrecorded(error, action, fields.get("outcome", Outcome.SUCCESS))
        if is_storage_full(error):  # counted; the full disk is logged once per interval
            log.warning("audit: a sampled %s event was not recorded: the storage is full", action)
        else:
            log.exception("audit: could not record a sampled %s event", action)
        return None


def _tell_observers(action: str, request, details: dict[str, Any] | None, fields: dict[str, Any]) -> None:
    user = getattr(request, "user", None)
    actor = fields.get("actor") or (user if user is not None and user.is_authenticated else None)
    company = fields.get("company") or getattr(request, "company", None)
    observers.notify(
        observers.Occurrence(
            action=str(action),
            outcome=str(fields.get("outcome", Outcome.SUCCESS)),
            request=request,
            actor_id=getattr(actor, "pk", None),
            company_id=company_id_of(company),
            target=str(fields.get("target", "")),
            details=details or {},
        )
    )


def _queue_flush(action: str, kind: str, source: str, window: int) -> None:
    settled = (window + SETTLE_WINDOWS) * INTERVAL + FLUSH_GRACE
    run_after = datetime.fromtimestamp(settled, tz=UTC)
    try:
        flush_sampled.using(run_after=run_after).enqueue(action, kind, source, window)
    except Exception:  # the next event of this kind and source still carries the count
        log.exception("audit: could not queue the flush of sampled events")


def flush(action: str, kind: str, source: str, window: int) -> SecurityEvent | None:
    """Record what window ``window`` counted and did not record, unless the next event
    of its kind and source already carried it. The event stands for those refusals: its
    ``network`` is where they came from."""
    base = _base(action, kind, source)
    if window + SETTLE_WINDOWS > int(now() // INTERVAL):
        return None  # not settled yet (a worker ahead of time): the task is queued again
    carried = _claim(base, window)
    if not carried:
        return None
    return record(
        action,
        company=PLATFORM,
        target=f"network:{source}",
        outcome=Outcome.BLOCKED if action == EventAction.AUTHZ_FAIL else Outcome.FAILURE,
        details={"kind": kind, "network": source, "not_recorded": carried},
    )


@task()
def flush_sampled(action: str, kind: str, source: str, window: int) -> int:
    """The task queued with a sampled event (see :func:`flush`). Returns the count recorded."""
    if window + SETTLE_WINDOWS > int(now() // INTERVAL):
        _queue_flush(action, kind, source, window)
        return 0
    event = flush(action, kind, source, window)
    return int(event.details["not_recorded"]) if event is not None else 0

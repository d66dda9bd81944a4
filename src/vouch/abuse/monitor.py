"""The abuse rules' observer: counts what it hears in the cache and opens an incident
when a count reaches its threshold (P18, docs/security/abuse.md).

Per occurrence: one cache increment (plus a read of the company's thresholds, kept in
the process). A ``batched`` rule (the API's, which hears every call) is counted in the
process and added to the shared count once a hundredth of its threshold
(``BATCH_SHARE``) is pending, ``BATCH_SECONDS`` after the last addition, or when the
total the process last saw and its own count reach the threshold: across several
processes an incident opens at most that many occurrences per process later than if
each were added at once (one process alone: at the threshold exactly), and the calls of
a key that then stops are left uncounted, fewer than a hundredth of the threshold each.

Counts are in fixed windows (an hour, or a day for downloads) keyed by
rule, company and, for rules per account, the account: one company's activity never
counts against another's. An incident (rule + company + account) is opened once, with
``cache.add``, and lasts while the count stays at or above the threshold, then ``CALM``
windows more: its response, email and event happen once, when it opens."""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, transaction

from vouch.abuse import responses, thresholds
from vouch.abuse.rules import BASELINE_DAYS, DOWNLOAD_FACTOR, DOWNLOADS, Rule, rule_for
from vouch.audit.observers import Occurrence

log = logging.getLogger("vouch.abuse")

PREFIX = "ab"
CALM = 1  # windows without reaching the threshold before an incident is over
BATCH_SHARE = 100  # a batched rule adds to the shared count every threshold / 100 ...
BATCH_SECONDS = 2.0  # ... or every two seconds, whichever comes first
MAX_PENDING_KEYS = 10_000


def now() -> float:
    """The rules' clock (tests replace it)."""
    return time.time()


def _scope(rule: Rule, company_id: uuid.UUID, actor_id: int | None) -> str:
    return f"{rule.name}:{company_id.hex}:{actor_id if rule.per_account else '-'}"


def _incr(key: str, timeout: int, amount: int = 1) -> int:
    # incr first: past the first occurrence of a window the key exists (one write).
    try:
        return int(cache.incr(key, amount))
    except ValueError:
        if cache.add(key, amount, timeout=timeout):
            return amount
        return int(cache.incr(key, amount))


# A batched rule's counts in this process: key -> [not yet added, when last added, the
# shared total when last added].
_pending: dict[str, list[float]] = {}
_pending_lock = threading.Lock()


def _batched_incr(key: str, timeout: int, limit: int) -> int | None:
    """Count one occurrence of a batched rule; the shared total when this one added the
    process's pending count to it, None while it is only counted here. It adds once
    ``limit / BATCH_SHARE`` are pending, ``BATCH_SECONDS`` after the last addition, and
    whenever the total it last saw and its pending count reach ``limit`` (so a single
    process fires at the threshold exactly)."""
    step = max(1, limit // BATCH_SHARE)
    moment = time.monotonic()
    with _pending_lock:
        entry = _pending.get(key)
        if entry is None:
            if len(_pending) >= MAX_PENDING_KEYS:
                _pending.clear()  # windows long gone: what they held is in the shared count or moot
            entry = _pending[key] = [0, moment, 0]
        entry[0] += 1
        if entry[0] < step and moment - entry[1] < BATCH_SECONDS and entry[0] + entry[2] < limit:
            return None
        amount, entry[0], entry[1] = int(entry[0]), 0, moment
    try:
        total = _incr(key, timeout, amount)
    except Exception:
        with _pending_lock:  # kept for the next addition
            entry[0] += amount
        raise
    with _pending_lock:
        entry[2] = max(entry[2], total)
    return total


def forget_pending() -> None:
    """Tests: the counts this process has not added yet."""
    with _pending_lock:
        _pending.clear()


def _baseline(scope: str, day: int) -> float:
    """The company's normal: the average daily count of the previous days."""
    keys = [f"{PREFIX}:n:{scope}:{day - back}" for back in range(1, BASELINE_DAYS + 1)]
    counts = cache.get_many(keys)
    return sum(int(value) for value in counts.values()) / BASELINE_DAYS


def observe(occurrence: Occurrence) -> None:
    """Registered with ``vouch.audit.observers`` (``AbuseConfig.ready``)."""
    company_id = occurrence.company_id
    rule = rule_for(occurrence.action, company_id is not None, occurrence.details)
    if rule is None or company_id is None or (rule.per_account and occurrence.actor_id is None):
        return
    count(rule, company_id, occurrence.actor_id, request=occurrence.request)


def count(rule: Rule, company_id: uuid.UUID, actor_id: int | None, *, request=None) -> bool:
    """Count one occurrence; returns whether it opened an incident."""
    scope = _scope(rule, company_id, actor_id)
    window = int(now() // rule.window)
    keep = rule.window * (BASELINE_DAYS + 1) if rule is DOWNLOADS else rule.window * 2
    limit = thresholds.threshold(rule, company_id)
    key = f"{PREFIX}:n:{scope}:{window}"
    counted = _batched_incr(key, keep, limit) if rule.batched else _incr(key, keep)
    if counted is None or counted < limit:
        return False
    number = counted
    baseline = 0.0
    if rule is DOWNLOADS:
        baseline = _baseline(scope, window)
        limit = max(limit, math.ceil(DOWNLOAD_FACTOR * baseline))
        if number < limit:
            return False
    incident = f"{PREFIX}:i:{scope}"
    calm = rule.window * CALM
    if not cache.add(incident, window, timeout=calm):
        cache.touch(incident, calm)  # the same incident, still going: it lasts
        return False
    figures = responses.Figures(rule=rule, count=number, threshold=limit, baseline=round(baseline, 1))
    # After the change that was counted commits (a rolled-back invitation is no abuse
    # to act on, but it counted: it was tried).
    transaction.on_commit(
        lambda: responses.respond(figures, company_id, actor_id, request=request), using=DEFAULT_DB_ALIAS
    )
    return True

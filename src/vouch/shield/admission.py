"""Admission control for expensive work (P3, docs/security/limits.md): drawing a report's
PDF, a CSV import of requests, a candidate's data export and a dashboard search run at
most a few at once per company; one more is answered at once with "busy, try again in a
moment" (429 and Retry-After) instead of queueing behind the others for a thread.

Where the slots live depends on how Vouch is installed:

- **On the embedded default** (SQLite, one ``vouch serve`` per data directory, so every
  process that takes a slot is on this machine), a slot is a file under
  ``VOUCH_SLOTS_DIR`` locked with ``flock``: taking one is a non-blocking lock of a file
  only one holder can lock, a few microseconds and no write to any database. The kernel
  drops the lock when its holder's process dies. The cache (a table in SQLite there)
  made each search three write transactions, which searches typed at once queued for.
- **With a PostgreSQL control database** (possibly several servers), the slots are cache
  keys shared by every server (the ``limits`` cache alias): taking one is an ``add`` of
  a key that only one caller can create, with a lease (its timeout), so a slot whose
  holder died frees itself when the lease ends.

Cheap checks (the rate limits, the policy, the form) come first: a request refused by
them never takes a slot."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from vouch.core import metrics
from vouch.shield.limits import CACHE_ALIAS

log = logging.getLogger("vouch.shield")

LEASE = 120  # seconds a slot is held at most: longer than any of this work takes
RETRY_AFTER = 5
# Slots per company, as multiples of VOUCH_COMPANY_AT_ONCE: searches are short and many.
KINDS = {"pdf": 1, "import": 1, "export": 1, "search": 2}
WHAT = {
    "pdf": ("report PDF being prepared", "report PDFs being prepared"),
    "import": ("CSV import running", "CSV imports running"),
    "export": ("data export being prepared", "data exports being prepared"),
    "search": ("search running", "searches running"),
}


class Busy(Exception):
    """The company's slots for this kind of work are all taken."""

    def __init__(self, kind: str, at_once: int) -> None:
        self.kind = kind
        self.at_once = at_once
        self.retry_after = RETRY_AFTER
        self.message = (
            f"Your company already has {at_once} {WHAT[kind][at_once != 1]} right now, the most Vouch runs at once. "
            "Try again in a moment."
        )
        super().__init__(self.message)


def at_once(kind: str) -> int:
    """Slots of ``kind`` per company; 0 when admission control is off."""
    if getattr(settings, "VOUCH_PROTECTIONS_OFF", False):
        return 0
    return KINDS[kind] * int(getattr(settings, "VOUCH_COMPANY_AT_ONCE", 2))


def _key(kind: str, company_id: Any, slot: int) -> str:
    return f"adm:{kind}:{company_id}:{slot}"


@contextmanager
def admitted(kind: str, company_id: Any, *, lease: int = LEASE) -> Iterator[None]:
    """Run the block in one of the company's slots for ``kind``; :class:`Busy` when none is free."""
    slots = at_once(kind)
    if slots <= 0 or company_id is None:
        yield
        return
    slots_dir = getattr(settings, "VOUCH_SLOTS_DIR", None)
    try:
        if slots_dir:
            release = _take_file_slot(slots_dir, kind, company_id, slots)
        else:
            release = _take_cache_slot(kind, company_id, slots, lease)
    except Exception:  # noqa: BLE001  (the slots' store is out: the work is not refused for that)
        log.warning("admission: the slots' %s did not answer; %s admitted without a slot", slots_dir or "cache", kind)
        yield
        return
    if release is None:
        metrics.throttled_total.labels(route_class=kind, scope="company_busy").inc()
        raise Busy(kind, slots)
    try:
        yield
    finally:
        release()


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def _open_slot(directory: str, kind: str, slot: int) -> int:
    path = os.path.join(directory, f"{kind}.{slot}")
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o600)
    except FileNotFoundError:  # the company's first slot of any kind
        os.makedirs(directory, mode=0o700, exist_ok=True)
        return os.open(path, flags, 0o600)


def _take_file_slot(slots_dir: str, kind: str, company_id: Any, slots: int) -> Callable[[], None] | None:
    """A slot as a locked file (see the module); what frees it, or None when all are taken.
    ``flock`` locks belong to an open file, so two threads of one process exclude each
    other as two processes do; closing the only descriptor of the file frees its lock."""
    directory = os.path.join(slots_dir, _UNSAFE.sub("_", str(company_id)))
    for slot in range(slots):
        fd = _open_slot(directory, kind, slot)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        except OSError:
            os.close(fd)
            raise
        return lambda: os.close(fd)
    return None


def _take_cache_slot(kind: str, company_id: Any, slots: int, lease: int) -> Callable[[], None] | None:
    """A slot as a cache key (see the module); what frees it, or None when all are taken."""
    cache = caches[CACHE_ALIAS]
    token = secrets.token_hex(8)
    key = next(
        (k for k in (_key(kind, company_id, n) for n in range(slots)) if cache.add(k, token, timeout=lease)), None
    )
    if key is None:
        return None

    def release() -> None:
        # Only our own slot: past its lease it may be someone else's.
        with contextlib.suppress(Exception):
            if cache.get(key) == token:
                cache.delete(key)

    return release


def searching(request: HttpRequest) -> bool:
    """Whether a list page was asked to search (its ``q``): the searches admission counts."""
    return bool(request.GET.get("q", "").strip())


def busy_response(request: HttpRequest, busy: Busy) -> HttpResponse:
    response = render(
        request,
        "web/error.html",
        {"status": 429, "title": "Busy: try again in a moment", "message": busy.message},
        # 429, not 503: the server is fine, this company asked for more at once than it may
        # (and Django logs every 5xx as an error).
        status=429,
    )
    response["Retry-After"] = str(busy.retry_after)
    return response


def admit(kind: str, *, when: Callable[[HttpRequest], bool] | None = None) -> Callable:
    """A view decorator: the view runs in one of its company's slots for ``kind`` (only
    for requests ``when`` accepts, when given); a busy company gets :func:`busy_response`.
    Put it under the decorators that check the member and their role."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if when is not None and not when(request):
                return view(request, *args, **kwargs)
            company = getattr(request, "company", None)
            try:
                with admitted(kind, getattr(company, "pk", None)):
                    return view(request, *args, **kwargs)
            except Busy as busy:
                return busy_response(request, busy)

        return wrapped

    return decorator

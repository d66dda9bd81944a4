"""Who hears of a security event as it happens, besides the log.

Intrusion detection (``vouch.shield``) and the abuse rules (``vouch.abuse``) count what
happens (refused links, refused pages, CSRF failures, exports, invitations) by source,
account and company. They live in higher layers than the code that notices those things,
so instead of being called by it they register an observer here in their
``AppConfig.ready()``; ``record`` and ``record_sampled`` tell every observer of each
occurrence, whether it is recorded or only counted by the sampling (a flood that adds one
event a minute to the log is still heard request by request).

An observer must be cheap (it runs in the request that caused the event) and must not
raise: an error in one is logged and the others still run; the event is recorded anyway."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

log = logging.getLogger("vouch.audit")


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One security event as it happened (recorded or not)."""

    action: str
    outcome: str
    request: HttpRequest | None
    actor_id: int | None
    company_id: uuid.UUID | None
    target: str
    details: Mapping[str, Any]


Observer = Callable[[Occurrence], None]
_observers: list[Observer] = []


def observe(observer: Observer) -> Observer:
    """Register ``observer`` (from an ``AppConfig.ready()``); usable as a decorator."""
    if observer not in _observers:
        _observers.append(observer)
    return observer


def forget(observer: Observer) -> None:
    """Unregister ``observer`` (tests)."""
    if observer in _observers:
        _observers.remove(observer)


def heard(action: str, *, request: HttpRequest | None = None, actor_id: int | None, company_id: uuid.UUID) -> None:
    """Tell the observers of something that is not a security event but that they count
    (a reference request created: ``vouch.abuse``'s rules); nothing is recorded."""
    if _observers:
        notify(Occurrence(action, "success", request, actor_id, company_id, "", {}))


def notify(occurrence: Occurrence) -> None:
    for observer in tuple(_observers):
        try:
            observer(occurrence)
        except Exception:
            log.exception("audit: an observer of %s events failed", occurrence.action)

"""Which backup sets to keep: every set for a while, then one a day, then one a month.

Defaults (settings): every set of the last 48 hours, the newest set of each UTC day for
35 days, the newest of each month for 12 months; the newest set is always kept, and
sets stamped in the future (a clock set wrong) are never removed. Decided on the
target's own listing (the truth), for one company (or the control database) at a time.

Removing a set deletes its manifest first (so an interrupted removal leaves an
incomplete set, which nothing reads), then its objects. Sets left incomplete for over a
day (an upload that never finished, not waiting in this installation's spool) go too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from vouch.backups.sets.format import manifest_key
from vouch.backups.sets.reader import SetInfo, list_sets

INCOMPLETE_GRACE = timedelta(days=1)


@dataclass(frozen=True)
class Policy:
    hourly_hours: int
    daily_days: int
    monthly_months: int

    @classmethod
    def from_settings(cls) -> Policy:
        return cls(
            settings.VOUCH_BACKUP_KEEP_HOURLY_HOURS,
            settings.VOUCH_BACKUP_KEEP_DAILY_DAYS,
            settings.VOUCH_BACKUP_KEEP_MONTHLY_MONTHS,
        )


def _months_between(later: datetime, earlier: datetime) -> int:
    return (later.year * 12 + later.month) - (earlier.year * 12 + earlier.month)


def to_keep(times: list[datetime], now: datetime, policy: Policy) -> set[datetime]:
    """Of the complete sets taken at ``times``, those to keep at ``now``."""
    if not times:
        return set()
    keep = {max(times)}
    daily: dict = {}
    monthly: dict = {}
    for taken in sorted(times):  # later ones replace earlier ones: the newest per day/month
        if taken >= now - timedelta(hours=policy.hourly_hours):
            keep.add(taken)  # also every set in the future
        if taken >= now - timedelta(days=policy.daily_days):
            daily[taken.date()] = taken
        if _months_between(now, taken) < policy.monthly_months:
            monthly[(taken.year, taken.month)] = taken
    return keep | set(daily.values()) | set(monthly.values())


def plan(sets: list[SetInfo], now: datetime, policy: Policy, waiting: set) -> list[SetInfo]:
    """The sets to remove: complete ones the policy does not keep, and incomplete ones
    older than a day that are not ``waiting`` (set ids still in this spool)."""
    complete = [s for s in sets if s.complete]
    keep = to_keep([s.taken_at for s in complete], now, policy)
    remove = [s for s in complete if s.taken_at not in keep]
    remove += [s for s in sets if not s.complete and s.set_id not in waiting and s.taken_at < now - INCOMPLETE_GRACE]
    return remove


def remove_set(store, info: SetInfo) -> None:
    store.delete(manifest_key(info.location))
    store.delete_prefix(info.location + "/")


def prune(store, prefix: str, now: datetime, *, policy: Policy | None = None, waiting: set = frozenset()) -> list:  # type: ignore[assignment]  # typing debt
    """Apply retention to the sets under ``prefix`` in ``store``; the removed sets."""
    removed = plan(list_sets(store, prefix), now, policy or Policy.from_settings(), waiting)
    for info in removed:
        remove_set(store, info)
    return removed

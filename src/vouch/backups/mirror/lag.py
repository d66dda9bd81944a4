"""How far behind the mirror is: ``vouch mirror status``.

Litestream numbers each batch of commits it takes from a database's WAL (a TXID) and
keeps the batches not yet compacted beside the database (``.X.sqlite3-litestream/ltx/0``)
until they are uploaded. Comparing the newest local TXID with the newest in the mirror
says whether a database is fully copied, and the oldest batch not yet in the mirror
says for how long it has waited. This reads every copy's listing: a command for
people, not for /healthz (which reads the supervisor's state file)."""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vouch.backups.mirror import plan, state
from vouch.objectstore import StoreError, open_store

# Litestream's file names: ltx/<level>/<min>-<max>.ltx in a directory (and locally),
# <level as 4 hex digits>/<min>-<max>.ltx in a bucket.
_LTX = re.compile(
    r"^(?:(?P<db>[^/]+)/)?(?:ltx/(?P<level>\d+)|(?P<hexlevel>[0-9a-f]{4}))/(?P<min>[0-9a-f]{16})-(?P<max>[0-9a-f]{16})\.ltx$"
)
# Behind for longer than this is a problem worth an exit code 1.
LAG_PROBLEM_SECONDS = 10.0


@dataclass
class Lag:
    database: Path
    local_txid: int  # 0: Litestream has not taken the database up yet
    mirrored_txid: int  # 0: nothing of it in the mirror
    waiting_since: float | None  # when the oldest batch not yet mirrored was made

    @property
    def in_sync(self) -> bool:
        return self.local_txid > 0 and self.mirrored_txid >= self.local_txid

    def behind_seconds(self, now: float) -> float:
        return now - self.waiting_since if self.waiting_since else 0.0


def _local(database: Path) -> tuple[int, dict[int, float]]:
    """The newest local TXID and, per TXID in level 0, when that batch was made."""
    batches: dict[int, float] = {}
    newest = 0
    for path in (plan.meta_dir(database) / "ltx").glob("*/*.ltx"):
        match = _LTX.match(f"ltx/{path.parent.name}/{path.name}")
        if not match:
            continue
        txid = int(match["max"], 16)
        newest = max(newest, txid)
        if match["level"] == "0":
            try:
                batches[txid] = path.stat().st_mtime
            except FileNotFoundError:
                continue
    return newest, batches


def _mirrored(item: plan.Mirrored) -> dict[str, int]:
    """Newest TXID in the mirror for each database name (one listing per item)."""
    newest: dict[str, int] = {}
    for info in open_store(item.url).list(""):
        match = _LTX.match(info.key)
        if match:
            name = match["db"] or item.source.name
            newest[name] = max(newest.get(name, 0), int(match["max"], 16))
    return newest


def databases(item: plan.Mirrored) -> list[Path]:
    if not item.directory:
        return [item.source]
    return sorted(item.source.glob(plan.PATTERN)) if item.source.is_dir() else []


def lags(item: plan.Mirrored) -> list[Lag]:
    mirrored = _mirrored(item)
    result = []
    for database in databases(item):
        local, batches = _local(database)
        copied = mirrored.get(database.name, 0)
        waiting = [made for txid, made in batches.items() if txid > copied]
        result.append(Lag(database, local, copied, min(waiting) if waiting else None))
    return result


def cli_status(args) -> int:
    """Print what is mirrored where and how far behind; 1 if something is not copied."""
    items = plan.mirrored()
    if not items:
        print(
            "Nothing is mirrored by Vouch: the databases are PostgreSQL (see `vouch backup status` for "
            "their replication and archiving)."
        )
        return 0
    now = time.time()
    problems = 0
    health = state.health()["mirror"]
    print(f"Mirror process: {health['state']} ({health['detail']})")
    if health["state"] != "ok":
        problems += 1
    for item in items:
        try:
            found = lags(item)
        except StoreError as exc:
            print(f"{item.name}: {item.source} -> {item.url}: cannot read the mirror: {exc}")
            problems += 1
            continue
        behind = [lag for lag in found if not lag.in_sync]
        late = [lag for lag in behind if lag.local_txid == 0 or lag.behind_seconds(now) > LAG_PROBLEM_SECONDS]
        problems += len(late)
        worst = max((lag.behind_seconds(now) for lag in behind), default=0.0)
        summary = f"{len(found) - len(behind)} of {len(found)} database(s) fully copied"
        if behind:
            summary += f", {len(behind)} behind (the longest by {worst:.1f} s)"
        print(f"{item.name}: {item.source} -> {item.url}: {summary}")
        for lag in sorted(behind, key=lambda lag: -lag.behind_seconds(now))[:20]:
            if lag.local_txid == 0:
                what = "not taken up by the mirror yet"
            else:
                what = (
                    f"local txid {lag.local_txid:x}, mirrored {lag.mirrored_txid:x}, "
                    f"waiting {lag.behind_seconds(now):.1f} s"
                )
            print(f"  {lag.database.name}: {what}")
    if problems:
        print(f"{problems} problem(s): see docs/mirroring.md.", file=sys.stderr)
        return 1
    return 0

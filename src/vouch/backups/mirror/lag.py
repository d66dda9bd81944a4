"""How far behind the mirror is: ``vouch mirror status``.

Litestream numbers each batch of commits it takes from a database's WAL (a TXID) and
keeps the batches not yet compacted beside the database (``.X.sqlite3-litestream/ltx/0``)
until they are uploaded. Comparing the newest local TXID with the newest in the mirror
says whether a database is fully copied, and the oldest batch not yet in the mirror
says for how long it has waited. A company database the live set let go of (not written
for minutes: vouch.backups.mirror_scale) is idle, not behind, while its files are as they
were when it was let go, after its last upload (the live set records them). This reads
every copy's listing: a command for people, not for /healthz (which reads the supervisor's state file)."""

from __future__ import annotations

import json
import re
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from vouch.backups import mirror_scale
from vouch.backups.mirror import plan, state
from vouch.objectstore import StoreError, open_store

# Litestream's file names: ltx/<level>/<min>-<max>.ltx in a directory (and locally),
# <level as 4 hex digits>/<min>-<max>.ltx in a bucket.
_LTX = re.compile(
    r"^(?:(?P<db>[^/]+)/)?(?:ltx/(?P<level>\d+)|(?P<hexlevel>[0-9a-f]{4}))/(?P<min>[0-9a-f]{16})-(?P<max>[0-9a-f]{16})\.ltx$"
)
# Behind for longer than this is a problem worth an exit code 1.
LAG_PROBLEM_SECONDS = 10.0


WAL_HEADER = 32
FRAME_HEADER = 24


class WalCursor:
    """The end of the last committed transaction in a database's WAL, read from the
    frames' headers (from where the last call stopped), with the WAL's salts: the two
    numbers that change each time SQLite starts the WAL over after a checkpoint."""

    def __init__(self, wal: Path) -> None:
        self.wal, self.salts, self.offset = wal, None, WAL_HEADER

    def committed_end(self) -> tuple[tuple[int, int], int] | None:
        try:
            handle = open(self.wal, "rb")  # noqa: SIM115
        except FileNotFoundError:
            return None
        with handle:
            header = handle.read(WAL_HEADER)
            if len(header) < WAL_HEADER:
                return None
            page_size = struct.unpack(">I", header[8:12])[0]
            salts = struct.unpack(">II", header[16:24])
            if salts != self.salts:
                self.salts, self.offset = salts, WAL_HEADER  # type: ignore[assignment]  # typing debt: an Optional not narrowed here
            position = end = self.offset
            while True:
                handle.seek(position)
                head = handle.read(FRAME_HEADER)
                if len(head) < FRAME_HEADER:
                    break
                _, commit, salt1, salt2 = struct.unpack(">IIII", head[:16])
                if (salt1, salt2) != salts:
                    break  # a frame of an earlier generation: the WAL ends here
                position += FRAME_HEADER + page_size
                if commit:
                    end = position
            self.offset = end
            return salts, end


def ltx_reach(path: Path) -> tuple[tuple[int, int], int]:
    """The WAL range an LTX file covers, from its header: ((salt1, salt2), offset + size)."""
    with open(path, "rb") as handle:
        header = handle.read(100)
    offset, size = struct.unpack(">qq", header[48:64])
    return struct.unpack(">II", header[64:72]), offset + size


@dataclass
class Lag:
    database: Path
    local_txid: int  # 0: Litestream has not taken the database up yet
    mirrored_txid: int  # 0: nothing of it in the mirror
    waiting_since: float | None  # when the oldest batch not yet mirrored was made
    unread_wal: bool = False  # commits in the WAL that Litestream has not taken yet
    idle: bool = False  # let go by the live set, fully copied, unchanged since

    @property
    def in_sync(self) -> bool:
        return self.idle or (self.local_txid > 0 and self.mirrored_txid >= self.local_txid and not self.unread_wal)

    def behind_seconds(self, now: float) -> float:
        return now - self.waiting_since if self.waiting_since else 0.0


def _unread_wal(database: Path, newest_batch: Path | None) -> float | None:
    """When the WAL was last written, if it holds commits past Litestream's newest batch."""
    wal = Path(f"{database}-wal")
    found = WalCursor(wal).committed_end()
    if found is None or found[1] <= WAL_HEADER:
        return None
    if newest_batch is not None:
        try:
            salts, reach = ltx_reach(newest_batch)
        except (FileNotFoundError, struct.error):
            return None
        if salts == found[0] and reach >= found[1]:
            return None
    try:
        return wal.stat().st_mtime
    except FileNotFoundError:
        return None


def _local(database: Path) -> tuple[int, dict[int, float], Path | None]:
    """The newest local TXID, per TXID in level 0 when that batch was made, and the
    newest level-0 batch's file."""
    batches: dict[int, float] = {}
    newest, newest_batch = 0, None
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
            if txid == max(batches):
                newest_batch = path
    return newest, batches, newest_batch


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


def let_go() -> dict[str, list]:
    """The databases the live set let go of after their last upload, with their files'
    signatures then (its state file; empty when there is none)."""
    try:
        data = json.loads((Path(settings.DATA_DIR) / mirror_scale.STATE_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return data.get("copied", {}) if data.get("version") == mirror_scale.STATE_VERSION else {}


def lags(item: plan.Mirrored) -> list[Lag]:
    mirrored = _mirrored(item)
    idle = let_go() if item.directory else {}
    result = []
    for database in databases(item):
        recorded = idle.get(str(database))
        if recorded is not None and recorded == mirror_scale.signature(database):
            copied = mirrored.get(database.name, 0)
            result.append(Lag(database, copied, copied, None, idle=True))
            continue
        local, batches, newest_batch = _local(database)
        copied = mirrored.get(database.name, 0)
        waiting = [made for txid, made in batches.items() if txid > copied]
        unread = _unread_wal(database, newest_batch) if local else None
        if unread is not None:
            waiting.append(unread)
        result.append(Lag(database, local, copied, min(waiting) if waiting else None, unread is not None))
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
    live = (state.read() or {}).get("live")
    if live:
        print(
            f"Live set: {live['live']} of {live['databases']} company database(s) live in Litestream "
            f"(written in the last {live['idle_after']:.0f} s); the others are idle, copied whole when let go"
            + (f"; {live['waiting']} waiting to be copied" if live.get("waiting") else "")
        )
        if live.get("verify_ms_p50") is not None:
            print(
                f"Copies checked when let go: {live['verified']} equal to their database, "
                f"{live['diverged']} found different and made again ({live['healed']} done)"
            )
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
        idle = sum(lag.idle for lag in found)
        if idle:
            summary += f" ({idle} idle)"
        if behind:
            summary += f", {len(behind)} behind (the longest by {worst:.1f} s)"
        print(f"{item.name}: {item.source} -> {item.url}: {summary}")
        for lag in sorted(behind, key=lambda lag: -lag.behind_seconds(now))[:20]:
            if lag.local_txid == 0:
                what = "not taken up by the mirror yet"
            else:
                what = f"local txid {lag.local_txid:x}, mirrored {lag.mirrored_txid:x}"
                if lag.unread_wal:
                    what += ", newer commits in its WAL not yet taken"
                what += f", waiting {lag.behind_seconds(now):.1f} s"

            print(f"  {lag.database.name}: {what}")
    if problems:
        print(f"{problems} problem(s): see docs/mirroring.md.", file=sys.stderr)
        return 1
    return 0

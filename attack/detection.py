"""How fast intrusion detection (docs/security/promises.md#p4) sets in against a scanner:
from the server's own request log during the wapiti run, the share of wapiti's requests
answered by a block (403 with ``X-Vouch-Blocked``, which the log line marks
``"blocked": true``) after its first minute, and the time from its first request to its
first blocked answer."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

GRACE_SECONDS = 60.0


@dataclass
class Detection:
    requests: int
    after_first_minute: int
    blocked_after_first_minute: int
    blocked: int
    first_block_seconds: float | None  # None: never blocked

    @property
    def share_blocked(self) -> float:
        return self.blocked_after_first_minute / self.after_first_minute if self.after_first_minute else 0.0

    def lines(self) -> list[str]:
        first = "never" if self.first_block_seconds is None else f"{self.first_block_seconds:.1f} s"
        return [
            f"scanner requests logged: {self.requests} ({self.blocked} answered by a block)",
            f"blocked after its first minute: {self.share_blocked:.1%} "
            f"({self.blocked_after_first_minute} of {self.after_first_minute})",
            f"time from its first request to its first blocked answer: {first}",
        ]


def _time(entry: dict) -> datetime.datetime:
    return datetime.datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))


def request_entries(chunk: bytes) -> list[dict]:
    entries = []
    for line in chunk.splitlines():
        if not line.startswith(b"{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "request" and "timestamp" in entry:
            entries.append(entry)
    return entries


def measure(entries: list[dict], grace: float = GRACE_SECONDS) -> Detection:
    """The figures for the request log ``entries`` of one scanner run (in log order)."""
    if not entries:
        return Detection(0, 0, 0, 0, None)
    start = _time(entries[0])
    offsets = [((_time(e) - start).total_seconds(), bool(e.get("blocked"))) for e in entries]
    late = [blocked for offset, blocked in offsets if offset >= grace]
    first = next((offset for offset, blocked in offsets if blocked), None)
    return Detection(len(entries), len(late), sum(late), sum(b for _, b in offsets), first)


class LogWindow:
    """The server log's lines written between ``start()`` and ``entries()``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def start(self) -> None:
        self.offset = self.path.stat().st_size

    def entries(self) -> list[dict]:
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            return request_entries(handle.read())

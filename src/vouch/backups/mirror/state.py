"""The mirror's recorded state, and its health from it.

Whoever runs Litestream (``vouch serve``, or ``vouch mirror run`` on its own) writes a
small JSON file in VOUCH_DATA_DIR: when the process was last seen running, how often it
was restarted, and which databases Litestream reported it could not copy (read from its
log). ``health()`` reads only that file, so /healthz stays cheap."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from django.conf import settings

from vouch.backups.mirror import plan

STATE_NAME = "mirror-state.json"
# The supervisor rewrites the file at least this often while the mirror runs; a file
# older than STALE_SECONDS means nobody is watching the mirror any more.
HEARTBEAT_SECONDS = 2.0
STALE_SECONDS = 30.0
# Litestream repeats an error at most every 30 s while it lasts (and logs a recovery);
# an error not repeated for this long has gone.
ERROR_FRESH_SECONDS = 90.0


def state_path() -> Path:
    return Path(settings.DATA_DIR) / STATE_NAME


def read() -> dict | None:
    try:
        return json.loads(state_path().read_text())
    except (FileNotFoundError, ValueError):
        return None


def write(state: dict) -> None:
    path = state_path()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(state, handle)
    os.replace(temporary, path)


def failing(state: dict, now: float | None = None) -> dict[str, dict]:
    """The databases whose copying failed recently and has not recovered since."""
    now = now or time.time()
    return {
        name: error for name, error in state.get("failing", {}).items() if now - error["last"] < ERROR_FRESH_SECONDS
    }


def _ago(seconds: float) -> str:
    return f"{seconds:.0f} s ago" if seconds < 120 else f"{seconds / 60:.0f} min ago"


def health() -> dict[str, dict[str, str]]:
    """``{"mirror": {"state": "ok"|"degraded"|"off", "detail": ...}}`` from the state file."""
    if not plan.mirrored():
        return {"mirror": {"state": "off", "detail": "PostgreSQL: its own replication, not Vouch, keeps the copy"}}
    state = read()
    if state is None:
        return {
            "mirror": {"state": "off", "detail": "not running here (no `vouch serve` or `vouch mirror run` with it)"}
        }
    now = time.time()
    if state.get("refused"):
        return {"mirror": {"state": "degraded", "detail": f"not started: {state['refused']}"}}
    if state.get("stopped_at"):
        return {"mirror": {"state": "off", "detail": f"stopped {_ago(now - state['stopped_at'])}"}}
    seen = now - state.get("confirmed_at", 0)
    if seen > STALE_SECONDS:
        return {"mirror": {"state": "degraded", "detail": f"no report from the mirror since {_ago(seen)}"}}
    restarts = state.get("restarts", 0)
    if not state.get("running"):
        detail = state.get("problem") or "the mirror process stopped; it is being restarted"
        return {"mirror": {"state": "degraded", "detail": detail}}
    errors = failing(state, now)
    if errors:
        name, error = min(errors.items(), key=lambda item: item[1]["since"])
        return {
            "mirror": {
                "state": "degraded",
                "detail": f"{len(errors)} database(s) not copied since {_ago(now - error['since'])} "
                f"({name}: {error['error']})",
            }
        }
    live = state.get("live") or {}
    return {
        "mirror": {
            "state": "ok",
            "detail": f"running; {len(state.get('targets', []))} mirrored"
            + (
                f" ({live['live']} of {live['databases']} company database(s) live, the others idle and copied)"
                if live
                else ""
            )
            + (f", {restarts} restart(s)" if restarts else ""),
        }
    }


def clear() -> None:
    with contextlib.suppress(FileNotFoundError):
        state_path().unlink()

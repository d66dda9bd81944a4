"""Stopping `vouch serve` stops every server process it started, even right after start."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.live import VOUCH, cleanup, make_server

pytestmark = pytest.mark.server


def _descendants(pid: int) -> set[int]:
    """Every live descendant of pid, read from /proc (Linux)."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    frontier.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.parametrize("when", ["while starting", "once serving"])
def test_sigterm_leaves_no_server_process_behind(when):
    server = make_server()
    try:
        if when == "once serving":
            server.start()
            process = server.process
        else:
            server.vouch("setup")  # so the stop lands while the servers themselves start
            process = subprocess.Popen([str(VOUCH), "serve"], env=server.env, stdout=subprocess.DEVNULL)
            server.process = process
        # Wait for the granian processes to exist, then stop at once.
        assert _wait_until(lambda: len(_descendants(process.pid)) >= 2, 60), "servers never started"
        started = _descendants(process.pid)
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        assert _wait_until(lambda: not any(_alive(pid) for pid in started), 10), [pid for pid in started if _alive(pid)]
    finally:
        cleanup(server)

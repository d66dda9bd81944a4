"""A live server of the attack tests' own, seeded (attack/seed.py): the fuzzer's hostile
input must not reach the server other tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from attack import seed
from tests.live import cleanup, make_server


@pytest.fixture(scope="session")
def attack_target():
    """(server, seeded data, the data's state before any attack)."""
    server = make_server().start()
    try:
        seeded = seed.seed(server)
        yield server, seeded, seed.state(server, seeded)
    finally:
        # The server's log (one line per request, with its time) outlives it, for reading a failure.
        log = Path(__file__).resolve().parents[2] / "build" / "attack" / "server-fuzz.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        server.stop()  # first: its last lines are written when it exits
        log.write_text(server.log())
        cleanup(server)

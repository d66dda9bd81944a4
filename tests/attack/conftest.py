"""A live server of the attack tests' own, seeded (attack/seed.py): the fuzzer's hostile
input must not reach the server other tests share."""

from __future__ import annotations

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
        cleanup(server)

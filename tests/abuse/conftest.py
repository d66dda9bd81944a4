from __future__ import annotations

import pytest

from vouch.abuse import monitor, thresholds


class Clock:
    def __init__(self) -> None:
        self.at = 1_900_022_400.0  # a fixed moment, at the start of an hour and of a day (UTC)

    def advance(self, seconds: float) -> None:
        self.at += seconds


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    """The rules' clock, fixed: a count never straddles two windows by chance."""
    moment = Clock()
    monkeypatch.setattr(monitor, "now", lambda: moment.at)
    thresholds._overrides.clear()
    yield moment
    thresholds._overrides.clear()

from __future__ import annotations

import time

import pytest

from vouch.audit import sampling
from vouch.shield import limits, state


@pytest.fixture
def clock(monkeypatch):
    """Detection's clock, standing still until a test moves it."""
    moment = [state.now()]
    monkeypatch.setattr(state, "now", lambda: moment[0])
    return moment


@pytest.fixture
def limits_clock(monkeypatch):
    """The request limits' (and the sampling's) clock at the start of a minute, standing
    still until a test moves it: a test's requests all fall in one window."""
    moment = [(int(time.time() // limits.WINDOW) + 1) * limits.WINDOW + 1.0]
    monkeypatch.setattr(limits, "now", lambda: moment[0])
    monkeypatch.setattr(sampling, "now", lambda: moment[0])
    return moment

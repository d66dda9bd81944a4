from __future__ import annotations

import pytest

from vouch.shield import state


@pytest.fixture
def clock(monkeypatch):
    """Detection's clock, standing still until a test moves it."""
    moment = [state.now()]
    monkeypatch.setattr(state, "now", lambda: moment[0])
    return moment

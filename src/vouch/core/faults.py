"""Pause points for Vouch's fault tests: ``pause("after_reminder_commit")`` waits there
while the file ``VOUCH_TEST_PAUSE_FILE`` exists, when ``VOUCH_TEST_PAUSE_AT`` names
that point, so a test can SIGKILL the process exactly there. Unset (always, outside
the tests) it does nothing."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings


def pause(point: str) -> None:
    if point != settings.VOUCH_TEST_PAUSE_AT:
        return
    flag = Path(settings.VOUCH_TEST_PAUSE_FILE)
    (flag.parent / f"{flag.name}.reached").touch()  # the test waits for this, then kills
    while flag.exists():
        time.sleep(0.01)

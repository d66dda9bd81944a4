"""TOTP codes as an authenticator app shows them, for tests that type one in."""

from __future__ import annotations

import time

from allauth.mfa import app_settings
from allauth.mfa.totp.internal import auth as totp_auth

# Vouch accepts only the current 30-second step's code (allauth's tolerance 0, so a used
# code cannot be replayed in a neighbouring step). A code computed in the step's last
# moments may be checked in the next one, under load, and refused: a test that must
# get in first waits for the next step then, as a person would wait for the next code.
# The wait is at most MARGIN seconds, one call in ten.
MARGIN = 3.0


def current_code(secret: str) -> str:
    left = app_settings.TOTP_PERIOD - time.time() % app_settings.TOTP_PERIOD
    if left < MARGIN:
        time.sleep(left + 0.05)
    counter = next(iter(totp_auth.yield_hotp_counters_from_time()))
    return totp_auth.format_hotp_value(totp_auth.hotp_value(secret, counter))

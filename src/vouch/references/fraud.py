"""Fraud signals. Being written: ``record`` keeps where and when a candidate or referee
acted; ``evaluate`` raises flags from what was recorded."""

from __future__ import annotations


def record(http_request, request, *, actor: str, action: str, reference=None):
    """Record one candidate or referee action (address, device, time)."""
    return


def evaluate(request) -> list:
    """Run every check on the request; return the flags newly raised."""
    return []

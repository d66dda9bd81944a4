"""How safe the data is right now: backups, the mirror, and (on PostgreSQL) replication
and WAL archiving, for /healthz, ``vouch backup status`` and the operators' page.

Each part of vouch.backups contributes a function listed in ``PROVIDERS``; it returns
``{name: {"state": "ok" | "degraded" | "off", "detail": str}}`` and must be cheap (load
balancers poll /healthz every few seconds): it reads recorded state, it does not probe
remote stores. A degraded item does not make /healthz fail (the app server itself is
fine, and taking it out of the load balancer would not help); it is shown, and the
operators are told (vouch.backups.alerts)."""

from __future__ import annotations

import importlib

import structlog

log = structlog.get_logger(__name__)

PROVIDERS = [
    "vouch.backups.sets:health",
    "vouch.backups.mirror:health",
    "vouch.backups.drills:health",
    "vouch.backups.replication:health",
]


def report() -> dict[str, dict[str, str]]:
    items: dict[str, dict[str, str]] = {}
    for entry in PROVIDERS:
        module_name, function_name = entry.split(":")
        try:
            function = getattr(importlib.import_module(module_name), function_name)
        except (ImportError, AttributeError):
            continue  # that part is not installed here
        try:
            items.update(function())
        except Exception as exc:  # noqa: BLE001  (a broken check is itself degraded, never a 500)
            log.warning("data safety check failed", check=entry, error=str(exc))
            items[entry.split(":")[0].rsplit(".", 1)[-1]] = {"state": "degraded", "detail": f"check failed: {exc}"}
    return items


def degraded(items: dict[str, dict[str, str]]) -> list[str]:
    return [name for name, item in items.items() if item.get("state") == "degraded"]

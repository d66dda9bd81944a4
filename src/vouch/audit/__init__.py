"""The security event log: one way to record security events, append-only and hash-chained.

``from vouch.audit import record`` is the entry point; see ``vouch.audit.events``."""

from __future__ import annotations

__all__ = ["record"]


def __getattr__(name: str):
    # imported here: lazy, so importing the package while Django loads its apps does not
    # import models.
    if name == "record":
        from vouch.audit.events import record

        return record
    raise AttributeError(name)

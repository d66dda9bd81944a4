"""Writing and reading the current company's activity log."""

from __future__ import annotations

from vouch.activity.models import Entry


def log(action: str, summary: str, *, actor=None, details: dict | None = None) -> Entry:
    """Add an entry to the current company's log (needs a company context)."""
    return Entry.objects.create(
        action=action,
        summary=summary[:300],
        actor_id=getattr(actor, "pk", None),
        actor_name=(getattr(actor, "full_name", "") or "")[:150],
        details=details or {},
    )


def entries():
    return Entry.objects.all()

"""Template helpers for the activity log pages."""

from __future__ import annotations

from django import template

from vouch.activity import services

register = template.Library()


@register.filter
def activity_label(action: str) -> str:
    return services.label(action)

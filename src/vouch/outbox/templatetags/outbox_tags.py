"""Whether mail goes to the local outbox, for pages that tell people where to look."""

from __future__ import annotations

from django import template

from vouch.outbox import status

register = template.Library()


@register.simple_tag
def outbox_in_use() -> bool:
    return status.in_use()

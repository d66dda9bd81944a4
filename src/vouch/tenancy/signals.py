"""Signals and hooks of vouch.tenancy for the layers above it (docs/development/architecture.md, Layers).

Tenancy sits below the apps that keep data per company (links, activity, backups), so
it tells them of a company's changes through these rather than import them; each
connects its receivers in its AppConfig.ready(). Sent with ``send``, not ``send_robust``:
a receiver that fails fails the change, as the direct calls they replace did."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.dispatch import Signal

if TYPE_CHECKING:
    from django.http import HttpRequest

    from vouch.accounts.models import Membership

# A company was renamed: company, before, after (names) and actor (the User). Sent once
# the new name is saved; vouch.activity adds it to the company's activity log.
company_renamed = Signal()

# A company is being purged (vouch.tenancy.deletion.purge): company. Sent inside the
# purge's control-database transaction, before its memberships are deleted; vouch.links
# deletes the company's private links.
company_purging = Signal()

# A purged company's database is gone: company_id and region (its name). Sent before
# its outbox mail is removed; vouch.backups removes its copy in the region's mirror. A
# mirror target that cannot be reached fails the purge, which the next run finishes.
company_database_discarded = Signal()

# The owners' settings page (vouch.tenancy.views) shows the company's last backup and
# restore drill: vouch.backups sets this to its summary of a company (by id) in its
# AppConfig.ready(). A hook, not a signal, because a value comes back.
backup_summary: Callable[[uuid.UUID], dict] | None = None

# Operators (User.is_staff) are members of no company; vouch.support sets this in its
# AppConfig.ready() to what puts one in a company for a request: an unsaved membership
# while the operator's support grant is live, None otherwise (P15). Unset: never.
support_membership: Callable[[HttpRequest], Membership | None] | None = None

"""Changing the company's branding: owners and admins only (``Action.MANAGE_SETTINGS``,
asked again here whatever the view did), each change a security event, the replaced
logo file removed once the change has committed. Needs the company's context."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.files.base import ContentFile

from vouch.accounts import policy
from vouch.accounts.models import Membership
from vouch.accounts.policy import Action
from vouch.audit import record
from vouch.audit.models import EventAction
from vouch.core.text import one_line
from vouch.references.branding.images import clean_logo
from vouch.references.branding.models import Branding
from vouch.tenancy import company_db
from vouch.vault.files import encrypted_storage

_COLOUR = re.compile(r"#[0-9a-f]{6}")


@dataclass(frozen=True)
class Brand:
    """What the pages, emails and PDF show of a company: its name, its accent colour
    ("" for Vouch's own) and its logo's version ("" for none)."""

    name: str
    accent: str = ""
    logo_version: str = ""
    logo_width: int = 0
    logo_height: int = 0


def brand_of(company) -> Brand:
    """The company's brand (in its context)."""
    row = Branding.for_reading()
    return Brand(
        # A name stored before the one-line rule held: it also goes into mail headers.
        name=one_line(company.name),
        # Checked when saved; checked again because it goes into style sheets.
        accent=row.accent if _COLOUR.fullmatch(row.accent) else "",
        logo_version=row.logo_version,
        logo_width=row.logo_width,
        logo_height=row.logo_height,
    )


def logo_png(version: str = "") -> bytes | None:
    """The stored logo's PNG bytes (decrypted), or None when there is none or it is not
    ``version`` (when given)."""
    row = Branding.for_reading()
    if not row.logo.name or (version and version != row.logo_version):
        return None
    with row.logo.open("rb") as handle:
        return handle.read()


def _require(membership: Membership) -> None:
    policy.require(policy.can(membership, Action.MANAGE_SETTINGS))


def _locked() -> Branding:
    return Branding.objects.select_for_update().filter(pk=1).first() or Branding(pk=1)


def _record(membership: Membership, request, details: dict) -> None:
    record(
        EventAction.COMPANY_BRANDING_CHANGED,
        request=request,
        actor=membership.user,
        company=membership.company_id,
        target=f"company:{membership.company_id}",
        details=details,
    )


def set_logo(membership: Membership, data: bytes, *, request=None) -> Branding:
    """Check ``data`` (``images.LogoRefused`` when it is not acceptable), store the PNG
    drawn from it and make it the logo."""
    _require(membership)
    logo = clean_logo(data)
    storage = encrypted_storage
    with company_db.atomic():
        row = _locked()
        old = row.logo.name
        row.logo.save("logo.png", ContentFile(logo.png), save=False)
        new = row.logo.name
        try:
            row.logo_width, row.logo_height, row.logo_size = logo.width, logo.height, len(logo.png)
            row.updated_by_id = company_db.actor_id(membership.user)
            row.save()
            if old:
                company_db.on_commit(storage.remover(old))
            _record(membership, request, {"logo": "set", "width": logo.width, "height": logo.height})
        except BaseException:
            storage.delete(new)
            raise
    return row


def remove_logo(membership: Membership, *, request=None) -> bool:
    """Remove the logo; False when there was none."""
    _require(membership)
    storage = encrypted_storage
    with company_db.atomic():
        row = _locked()
        if not row.logo.name:
            return False
        old = row.logo.name
        row.logo.name = ""
        row.logo_width = row.logo_height = row.logo_size = 0
        row.updated_by_id = company_db.actor_id(membership.user)
        row.save()
        company_db.on_commit(storage.remover(old))
        _record(membership, request, {"logo": "removed"})
    return True


def set_accent(membership: Membership, accent: str, *, request=None) -> bool:
    """Make ``accent`` (already checked by ``colours.parse_accent``; "" for Vouch's own
    blue) the accent colour; False when it already was."""
    _require(membership)
    with company_db.atomic():
        row = _locked()
        if row.accent == accent:
            return False
        before = row.accent
        row.accent = accent
        row.updated_by_id = company_db.actor_id(membership.user)
        row.save()
        _record(membership, request, {"accent_from": before or "default", "accent_to": accent or "default"})
    return True

"""What Vouch's middleware and decorators add to a request, written down for the type checker.

Annotations only: these classes are never instantiated, and a view still receives Django's
own ``HttpRequest``. A view annotates its ``request`` with the class that says what it may
rely on:

- ``VouchRequest``: every request past the middleware (``vouch.web.middleware`` sets the
  request id, ``vouch.tenancy.middleware`` the memberships and the current company, which
  are None for a visitor, a staff account or a member without a company,
  ``vouch.guard.enforcement`` the two-factor deadline).
- ``CompanyRequest``: a view that only runs with a current company (company pages are
  refused without one), so ``membership`` and ``company`` are set.
- ``LinkRequest``: a view behind ``vouch.links.decorators.link_required``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from vouch.accounts.models import Membership
    from vouch.links.services import ResolvedLink
    from vouch.tenancy.models import Company


class VouchRequest(HttpRequest):
    request_id: str
    membership: Membership | None
    company: Company | None
    memberships: list[Membership]
    two_factor_deadline: datetime | None


class CompanyRequest(VouchRequest):
    membership: Membership
    company: Company


class LinkRequest(VouchRequest):
    link: ResolvedLink
    vouch_link_device: str

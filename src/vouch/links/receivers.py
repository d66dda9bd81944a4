"""vouch.links' part in a company's purge (vouch.tenancy.signals); connected in LinksConfig.ready()."""

from __future__ import annotations

from vouch.links.models import Link
from vouch.tenancy.signals import company_purging


def on_company_purging(sender, company, **kwargs) -> None:
    Link.objects.filter(company=company).delete()


def connect() -> None:
    company_purging.connect(on_company_purging, dispatch_uid="vouch.links.company_purging")

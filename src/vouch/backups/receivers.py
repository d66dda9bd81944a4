"""vouch.backups' part in tenancy's pages and purges (docs/development/architecture.md, Layers):
tenancy is a layer below and cannot import it. Connected in BackupsConfig.ready()."""

from __future__ import annotations

from vouch.backups.mirror import remove_company_mirror
from vouch.backups.views import company_summary
from vouch.tenancy import views as tenancy_views
from vouch.tenancy.signals import company_database_discarded


def on_company_database_discarded(sender, company_id, region, **kwargs) -> None:
    remove_company_mirror(company_id, region)


def connect() -> None:
    company_database_discarded.connect(on_company_database_discarded, dispatch_uid="vouch.backups.company_mirror")
    tenancy_views.backup_summary = company_summary

"""vouch.backups' part in tenancy's pages and purges (docs/development/architecture.md, Layers):
tenancy is a layer below and cannot import it. Connected in BackupsConfig.ready()."""

from __future__ import annotations

import uuid

from vouch.tenancy import signals as tenancy_signals

# The mirror and pages modules are imported by the functions below when first called, not
# here: this module is imported by ready(), which every `vouch` command runs, and the
# mirror would add ctypes, inotify and its process management to every start-up.


def on_company_database_discarded(sender, company_id, region, **kwargs) -> None:
    # imported here: keeps start-up light (loads ctypes/inotify only when a company is purged)
    from vouch.backups.mirror import remove_company_mirror

    remove_company_mirror(company_id, region)


def company_summary(company_id: uuid.UUID) -> dict:
    # imported here: keeps start-up light (the pages module loads with the page, not in ready())
    from vouch.backups.views import company_summary

    return company_summary(company_id)


def connect() -> None:
    tenancy_signals.company_database_discarded.connect(
        on_company_database_discarded, dispatch_uid="vouch.backups.company_mirror"
    )
    tenancy_signals.backup_summary = company_summary

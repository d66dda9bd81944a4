"""What goes into the company's activity log from the layers below vouch.activity, which
cannot import it (docs/development/architecture.md, Layers); connected in ActivityConfig.ready()."""

from __future__ import annotations

from vouch.accounts.signals import member_activity
from vouch.activity.services import Kind, log, log_after_commit
from vouch.core.context import company_context
from vouch.tenancy.signals import company_renamed


def on_member_activity(sender, company, action, summary, actor=None, details=None, **kwargs) -> None:
    log_after_commit(company, Kind(action), summary, actor=actor, details=details)


def on_company_renamed(sender, company, before, after, actor=None, **kwargs) -> None:
    with company_context(company):
        log(Kind.SETTINGS_CHANGED, f"Company renamed from {before} to {after}", actor=actor)


def connect() -> None:
    member_activity.connect(on_member_activity, dispatch_uid="vouch.activity.member_activity")
    company_renamed.connect(on_company_renamed, dispatch_uid="vouch.activity.company_renamed")

from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "vouch.support"
    label = "support"
    verbose_name = "Support access"

    def ready(self) -> None:
        # imported here: runs in AppConfig.ready()
        from vouch.accounts import policy
        from vouch.support import access
        from vouch.tenancy import signals

        # The lower layers ask about grants through these hooks (docs/development/architecture.md).
        signals.support_membership = access.membership_for
        policy.support_allows = access.allows
        # A purged company's grants go with it (their reasons may name its people).
        signals.company_purging.connect(access.on_company_purging, dispatch_uid="vouch.support.purge")

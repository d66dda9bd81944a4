from django.apps import AppConfig
from django.conf import settings


class OutboxConfig(AppConfig):
    name = "vouch.outbox"
    label = "outbox"
    verbose_name = "Local mail outbox"

    def ready(self) -> None:
        # imported here: runs in AppConfig.ready() (vault's rotation imports its models, which
        # load only after the app registry)
        from vouch.outbox import sealing
        from vouch.vault.rotation.master import register_external_key

        # A master key rotation re-wraps the outbox key too. Vault is below the outbox in the
        # layers (docs/development/architecture.md), so it calls the outbox through this.
        register_external_key("outbox", lambda provider, target: sealing.rewrap(settings.OUTBOX_DIR, provider, target))

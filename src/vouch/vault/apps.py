from django.apps import AppConfig


class VaultConfig(AppConfig):
    name = "vouch.vault"
    label = "vault"
    verbose_name = "Encryption at rest"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # imported here: runs in AppConfig.ready() (checks imports the models, loaded after this module)
        from vouch.vault import checks  # noqa: F401  (registers the key checks)

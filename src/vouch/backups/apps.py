from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "vouch.backups"
    label = "backups"
    verbose_name = "Mirroring, backups, restores and drills"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # imported here: runs in AppConfig.ready() (the receivers import models, loaded only now)
        from vouch.backups import receivers

        receivers.connect()

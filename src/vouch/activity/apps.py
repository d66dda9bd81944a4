from django.apps import AppConfig


class ActivityConfig(AppConfig):
    name = "vouch.activity"
    label = "activity"
    verbose_name = "Company activity log"

    def ready(self) -> None:
        # imported here: runs in AppConfig.ready() (the receivers import models, loaded only now)
        from vouch.activity import receivers

        receivers.connect()

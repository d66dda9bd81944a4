from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "vouch.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # imported here: runs in AppConfig.ready() (the receivers import models, loaded only now)
        from vouch.webhooks import receivers

        receivers.connect()

from django.apps import AppConfig


class LinksConfig(AppConfig):
    name = "vouch.links"
    label = "links"
    verbose_name = "Private links"

    def ready(self) -> None:
        # imported here: runs in AppConfig.ready() (the receivers import models, loaded only now)
        from vouch.links import receivers

        receivers.connect()

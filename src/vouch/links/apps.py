from django.apps import AppConfig


class LinksConfig(AppConfig):
    name = "vouch.links"
    label = "links"
    verbose_name = "Private links"

    def ready(self) -> None:
        # In ready(): the receivers import models, which are loaded only now.
        from vouch.links import receivers

        receivers.connect()

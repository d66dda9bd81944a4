from django.apps import AppConfig


class ShieldConfig(AppConfig):
    name = "vouch.shield"
    label = "shield"
    verbose_name = "Intrusion detection and request limits"

    def ready(self) -> None:
        # imported here: runs in AppConfig.ready()
        from vouch.shield import receivers

        receivers.connect()

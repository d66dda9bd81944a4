from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "vouch.audit"
    label = "audit"
    verbose_name = "Security event log"

    def ready(self) -> None:
        from vouch.audit import receivers

        receivers.connect()

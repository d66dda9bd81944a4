from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "vouch.audit"
    label = "audit"
    verbose_name = "Security event log"

    def ready(self) -> None:
        # imported here: runs in AppConfig.ready()
        from vouch.audit import receivers, spool

        receivers.connect()
        # While there is room: on a full disk the spool can still be rewritten in place.
        spool.prepare()

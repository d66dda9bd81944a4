from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "vouch.outbox"
    label = "outbox"
    verbose_name = "Local mail outbox"

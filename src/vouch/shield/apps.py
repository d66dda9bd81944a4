from django.apps import AppConfig


class ShieldConfig(AppConfig):
    name = "vouch.shield"
    label = "shield"
    verbose_name = "Intrusion detection and request limits"

from django.apps import AppConfig


class GuardConfig(AppConfig):
    name = "vouch.guard"
    label = "guard"
    verbose_name = "Account protection"

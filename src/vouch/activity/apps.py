from django.apps import AppConfig


class ActivityConfig(AppConfig):
    name = "vouch.activity"
    label = "activity"
    verbose_name = "Company activity log"

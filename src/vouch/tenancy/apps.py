from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "vouch.tenancy"
    label = "tenancy"
    verbose_name = "Companies and regions"

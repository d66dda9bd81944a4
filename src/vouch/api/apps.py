from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "vouch.api"
    label = "api"
    verbose_name = "REST API and its keys"

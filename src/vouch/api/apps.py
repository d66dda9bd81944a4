from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "vouch.api"
    label = "api"
    verbose_name = "REST API and its keys"

    def ready(self) -> None:
        from vouch.api.keys import creators

        creators.connect()

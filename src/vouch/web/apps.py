from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "vouch.web"
    label = "web"
    verbose_name = "Web layer"

    def ready(self) -> None:
        # imported here: runs in AppConfig.ready()
        from vouch.core import diskfull
        from vouch.web import checks  # noqa: F401  (registers the production checks)

        diskfull.install()

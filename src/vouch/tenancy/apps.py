from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "vouch.tenancy"
    label = "tenancy"
    verbose_name = "Companies and regions"

    def ready(self) -> None:
        # imported here: runs in AppConfig.ready()
        from vouch.core import context
        from vouch.tenancy import connections

        context.use_connection_pool(connections)

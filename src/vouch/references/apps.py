from django.apps import AppConfig


class ReferencesConfig(AppConfig):
    name = "vouch.references"
    label = "references"
    verbose_name = "Candidates and reference checks"

    def ready(self) -> None:
        # imported here: runs in AppConfig.ready() (receivers imports models, loaded after this module)
        from vouch.references import receivers  # noqa: F401  (connects the signal handlers)

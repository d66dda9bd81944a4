from django.apps import AppConfig


class AbuseConfig(AppConfig):
    name = "vouch.abuse"
    label = "abuse"
    verbose_name = "Abuse monitoring"

    def ready(self) -> None:
        # imported here: AppConfig.ready(), once the models are loaded
        from vouch.abuse import monitor, reauth, settings_page
        from vouch.accounts import decorators
        from vouch.audit import observers
        from vouch.guard import security_views

        observers.observe(monitor.observe)
        if reauth.demanded not in decorators.reauthentication_checks:
            decorators.reauthentication_checks.append(reauth.demanded)
        if settings_page.section not in security_views.page_sections:
            security_views.page_sections.append(settings_page.section)

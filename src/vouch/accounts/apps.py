from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "vouch.accounts"
    label = "accounts"
    verbose_name = "Accounts and access"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from vouch.accounts.middleware import start_session_clock

        user_logged_in.connect(start_session_clock, dispatch_uid="vouch.session_clock")

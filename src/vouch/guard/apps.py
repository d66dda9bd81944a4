from django.apps import AppConfig


class GuardConfig(AppConfig):
    name = "vouch.guard"
    label = "guard"
    verbose_name = "Account protection"

    def ready(self) -> None:
        from allauth.account import signals as account_signals

        from vouch.guard import throttle

        # A password reset through email turns password sign-in back on (vouch.guard.throttle).
        account_signals.password_reset.connect(throttle.on_password_reset, dispatch_uid="guard_throttle_pw_reset")

from django.apps import AppConfig


class GuardConfig(AppConfig):
    name = "vouch.guard"
    label = "guard"
    verbose_name = "Account protection"

    def ready(self) -> None:
        from allauth.account import signals as account_signals
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import post_delete, post_save

        # imported here: runs in AppConfig.ready()
        from vouch.guard import company_security, session_lifetime, sessions, throttle
        from vouch.guard.models import CompanySecuritySettings

        # Sign-in starts the session's idle and absolute clocks (vouch.guard.session_lifetime).
        user_logged_in.connect(session_lifetime.start_session_clock, dispatch_uid="vouch.session_clock")
        # A changed or reset password ends the account's other sessions (server-side).
        account_signals.password_changed.connect(sessions.on_password_changed, dispatch_uid="guard_sessions_pw_changed")
        account_signals.password_set.connect(sessions.on_password_changed, dispatch_uid="guard_sessions_pw_set")
        account_signals.password_reset.connect(sessions.on_password_reset, dispatch_uid="guard_sessions_pw_reset")
        # A company's changed settings apply at once in this process (see company_security.snapshot).
        for signal in (post_save, post_delete):
            signal.connect(company_security.on_settings_saved, sender=CompanySecuritySettings)
        # A password reset through email turns password sign-in back on (vouch.guard.throttle).
        account_signals.password_reset.connect(throttle.on_password_reset, dispatch_uid="guard_throttle_pw_reset")
        # Suspicious-login counters and account-change emails (vouch.guard.receivers).
        # imported here: runs in AppConfig.ready()
        from vouch.guard import receivers

        receivers.connect()
        # TOTP secrets and recovery-code seeds sealed for their row (vouch.guard.mfa_secrets).
        # imported here: runs in AppConfig.ready()
        from vouch.guard import mfa_secrets

        mfa_secrets.connect()

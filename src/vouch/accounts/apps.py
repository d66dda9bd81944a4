from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "vouch.accounts"
    label = "accounts"
    verbose_name = "Accounts and access"

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "postroom.accounts"
    label = "accounts"
    verbose_name = "User Master"

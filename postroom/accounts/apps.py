from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "postroom.accounts"
    label = "accounts"
    verbose_name = "User Master"

    def ready(self) -> None:
        # axes' receivers connect when this module is imported: importing it before connecting
        # ours makes axes count a failed login before Postroom audits it (login_audit).
        import axes.signals  # noqa: F401
        from django.conf import settings
        from django.contrib.auth.signals import user_login_failed

        from postroom.accounts import login_audit
        from postroom.accounts.client_address import trusted_proxy_networks
        from postroom.accounts.lockouts import lockout_settings_check

        user_login_failed.connect(
            login_audit.login_failure_record, dispatch_uid="postroom.accounts.login_audit"
        )
        # A misspelt setting stops the start here, rather than at the first login.
        trusted_proxy_networks(settings.POSTROOM_TRUSTED_PROXIES)
        lockout_settings_check()

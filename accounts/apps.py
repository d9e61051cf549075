from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Signing in (with a lockout after repeated failures) and personal API tokens for scripts."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
    verbose_name = "Accounts and API tokens"

    def ready(self) -> None:
        from lorasite import checks  # noqa: F401  (registers the deployment checks)

"""The CSSM's accounts: Smart Accounts, Virtual Accounts and user roles."""

from django.conf import settings
from django.db import models

from licensing_core.models import Lab


class CssmRole(models.TextChoices):
    """Domain-notes §5.12."""

    SA_ADMIN = "sa_admin", "Smart Account Administrator"
    SA_USER = "sa_user", "Smart Account User"
    SA_VIEWER = "sa_viewer", "Smart Account Viewer"
    VA_ADMIN = "va_admin", "Virtual Account Administrator"
    VA_USER = "va_user", "Virtual Account User"
    VA_VIEWER = "va_viewer", "Virtual Account Viewer"


class SmartAccount(models.Model):
    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="smart_accounts")
    name = models.CharField(max_length=100)
    domain = models.CharField(max_length=253, help_text="Account Domain Identifier, e.g. example.com")
    export_controlled_allowed = models.BooleanField(default=True)
    reservation_allowed = models.BooleanField(
        default=True, help_text="Specific/Permanent License Reservation enabled for this account by Cisco."
    )

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["lab", "domain"], name="one_smart_account_per_domain")]

    def __str__(self) -> str:
        return self.name


class VirtualAccount(models.Model):
    smart_account = models.ForeignKey(SmartAccount, on_delete=models.CASCADE, related_name="virtual_accounts")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=255, blank=True)
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["smart_account", "name"], name="unique_virtual_account_name"),
            models.UniqueConstraint(
                fields=["smart_account"], condition=models.Q(is_default=True), name="one_default_virtual_account"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AccountAccess(models.Model):
    """A user's role on a Smart Account (virtual_account empty) or on one
    Virtual Account."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cssm_access")
    smart_account = models.ForeignKey(SmartAccount, on_delete=models.CASCADE, related_name="access")
    virtual_account = models.ForeignKey(
        VirtualAccount, on_delete=models.CASCADE, null=True, blank=True, related_name="access"
    )
    role = models.CharField(max_length=16, choices=CssmRole.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "smart_account", "virtual_account"], name="one_role_per_user_and_account"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.get_role_display()}"

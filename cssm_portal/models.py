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
    # Lab time up to which the time-driven rules were applied (cssm_portal.sweeps):
    # a sweep with nothing due since then does no work.
    rules_checked_at = models.DateTimeField(null=True, blank=True)
    # The Smart Software Licensing Agreement version this account must still accept
    # (cssm_portal.agreements); empty when it has accepted the current one.
    pending_agreement = models.ForeignKey(
        "LicenseAgreement", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
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


# --- Licences ------------------------------------------------------------------------------


class LicenseType(models.TextChoices):
    PERPETUAL = "PERPETUAL", "Perpetual"
    TERM = "TERM", "Term"


class LicensePool(models.Model):
    """Licences of one entitlement tag held by one Virtual Account.

    `purchased` is what the account owns; `in_use` is the sum of the
    LicenseUsage rows of the account's product instances for the tag, kept by
    every service that writes usage, in the same transaction (a pool with
    purchased 0 is created when usage appears for a tag the account does not
    hold), so the Licenses pages read a column instead of aggregating usage.
    """

    virtual_account = models.ForeignKey(VirtualAccount, on_delete=models.CASCADE, related_name="pools")
    tag = models.CharField(max_length=200)
    purchased = models.PositiveIntegerField(default=0)
    license_type = models.CharField(max_length=10, choices=LicenseType.choices, default=LicenseType.PERPETUAL)
    end_date = models.DateField(null=True, blank=True)
    in_use = models.IntegerField(default=0)
    # The verdict (in use within the valid purchases) last written to the status
    # of the tag's usage rows: a renewal rewrites those rows only when it changes.
    in_compliance = models.BooleanField(default=True)

    class Meta:
        ordering = ["tag"]
        constraints = [
            models.UniqueConstraint(fields=["virtual_account", "tag"], name="one_pool_per_va_and_tag"),
            models.CheckConstraint(condition=models.Q(purchased__gte=0), name="pool_purchased_not_negative"),
            models.CheckConstraint(condition=models.Q(in_use__gte=0), name="pool_in_use_not_negative"),
            models.CheckConstraint(
                condition=(models.Q(license_type="TERM", end_date__isnull=False))
                | models.Q(license_type="PERPETUAL", end_date__isnull=True),
                name="pool_term_has_end_date",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tag} in {self.virtual_account}: {self.purchased}"


class TransactionSource(models.TextChoices):
    MANUAL = "Manual", "Manual"
    DLC = "DLC Device Migration", "DLC Device Migration"
    PAK = "PAK Migration", "PAK Migration"
    ORDER = "Order", "Order"
    TRANSFER = "Transfer", "Transfer"


class LicenseTransaction(models.Model):
    smart_account = models.ForeignKey(SmartAccount, on_delete=models.CASCADE, related_name="transactions")
    virtual_account = models.ForeignKey(VirtualAccount, on_delete=models.CASCADE, related_name="transactions")
    at = models.DateTimeField()
    tag = models.CharField(max_length=200)
    sku = models.CharField(max_length=40)
    license_name = models.CharField(max_length=200)
    quantity = models.IntegerField()
    license_type = models.CharField(max_length=10, choices=LicenseType.choices, default=LicenseType.PERPETUAL)
    end_date = models.DateField(null=True, blank=True)
    source = models.CharField(max_length=32, choices=TransactionSource.choices)
    reference = models.CharField(max_length=200, blank=True, help_text="Order number, PAK or device serial.")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["smart_account", "-at"]), models.Index(fields=["virtual_account", "-at"])]

    def __str__(self) -> str:
        return f"{self.sku} x{self.quantity} ({self.source})"


# --- Tokens and product instances ---------------------------------------------------------


class RegistrationToken(models.Model):
    virtual_account = models.ForeignKey(VirtualAccount, on_delete=models.CASCADE, related_name="tokens")
    token_id = models.UUIDField(unique=True)
    value = models.TextField()
    description = models.CharField(max_length=100, blank=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    max_uses = models.PositiveIntegerField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)
    revoked_at = models.DateTimeField(null=True, blank=True)
    export_controlled = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_uses__isnull=True) | models.Q(uses__lte=models.F("max_uses")),
                name="token_uses_within_max",
            ),
            models.CheckConstraint(
                condition=models.Q(max_uses__isnull=True) | models.Q(max_uses__gte=1), name="token_max_uses_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"Token {self.token_id}"


class ProductInstance(models.Model):
    """A registered appliance, or a reserving one known only from its request code."""

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="product_instances")
    virtual_account = models.ForeignKey(VirtualAccount, on_delete=models.CASCADE, related_name="instances")
    piid = models.UUIDField(unique=True)
    udi = models.CharField(max_length=200)
    name = models.CharField(max_length=255)
    product = models.CharField(max_length=8, help_text="ESA or SMA")
    pid = models.CharField(max_length=40)
    serial = models.CharField(max_length=80)
    software_version = models.CharField(max_length=80, blank=True)
    agent_version = models.CharField(max_length=40, blank=True)
    certificate_pem = models.TextField(blank=True)
    cert_expires_at = models.DateTimeField(null=True, blank=True)
    export_controlled = models.BooleanField(default=False)
    registered_at = models.DateTimeField()
    last_contact = models.DateTimeField()
    recent_nonces = models.JSONField(default=list, blank=True)
    dlc_completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["lab", "udi"], name="one_instance_per_udi")]
        # Duplicate Licenses is checked for one serial at each registration.
        indexes = [models.Index(fields=["lab", "serial"], name="pi_lab_serial_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_reserving(self) -> bool:
        return hasattr(self, "reservation")


class UsageStatus(models.TextChoices):
    AUTHORIZED = "authorized", "Authorized"
    OUT_OF_COMPLIANCE = "out_of_compliance", "Out of Compliance"
    RESERVED = "reserved", "Reserved"


class LicenseUsage(models.Model):
    instance = models.ForeignKey(ProductInstance, on_delete=models.CASCADE, related_name="usage")
    tag = models.CharField(max_length=200)
    count = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=UsageStatus.choices, default=UsageStatus.AUTHORIZED)

    class Meta:
        ordering = ["tag"]
        constraints = [
            models.UniqueConstraint(fields=["instance", "tag"], name="one_usage_per_instance_and_tag"),
            models.CheckConstraint(condition=models.Q(count__gte=1), name="usage_count_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.instance}: {self.tag} x{self.count}"


class ReservationType(models.TextChoices):
    SPECIFIC = "SPECIFIC", "Specific License Reservation"
    PERMANENT = "PERMANENT", "Permanent License Reservation"


class Reservation(models.Model):
    instance = models.OneToOneField(ProductInstance, on_delete=models.CASCADE, related_name="reservation")
    request_code = models.CharField(max_length=200)
    reservation_type = models.CharField(max_length=10, choices=ReservationType.choices)
    entitlements = models.JSONField(default=dict, help_text="{tag: count} currently reserved")
    authorization_code = models.TextField()
    authorized_at = models.DateTimeField()
    pending_entitlements = models.JSONField(null=True, blank=True)
    pending_authorization_code = models.TextField(blank=True)
    pending_since = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Reservation of {self.instance}"

    @property
    def pending(self) -> bool:
        return bool(self.pending_authorization_code)


# --- Alerts, preferences, account requests, on-prem ------------------------------------------


class CssmAlert(models.Model):
    smart_account = models.ForeignKey(SmartAccount, on_delete=models.CASCADE, related_name="alerts")
    virtual_account = models.ForeignKey(
        VirtualAccount, on_delete=models.CASCADE, null=True, blank=True, related_name="alerts"
    )
    alert_type = models.CharField(max_length=80)
    severity = models.CharField(max_length=16)
    message = models.TextField()
    dedupe_key = models.CharField(max_length=300)
    raised_at = models.DateTimeField()
    dismissed_at = models.DateTimeField(null=True, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["smart_account", "dedupe_key"],
                condition=models.Q(cleared_at__isnull=True),
                name="one_open_alert_per_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.alert_type}: {self.message}"


class NotificationPreference(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cssm_preferences")
    smart_account = models.ForeignKey(SmartAccount, on_delete=models.CASCADE, related_name="preferences")
    daily_summary = models.BooleanField(default=False)
    email = models.EmailField(blank=True)
    virtual_accounts = models.ManyToManyField(VirtualAccount, blank=True, related_name="+")
    alert_events = models.JSONField(default=list, blank=True)
    expiring_days = models.JSONField(default=list, blank=True)
    status_notification = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "smart_account"], name="one_preference_per_user")]

    def __str__(self) -> str:
        return f"Preferences of {self.user} for {self.smart_account}"


class SmartAccountRequestStatus(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", "Pending Approval"
    PENDING_SETUP = "pending_setup", "Pending Setup"
    COMPLETE = "complete", "Complete"
    REJECTED = "rejected", "Rejected"


class SmartAccountRequest(models.Model):
    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="smart_account_requests")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=50)
    domain = models.CharField(max_length=253)
    domain_edited = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=SmartAccountRequestStatus.choices)
    requested_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    smart_account = models.ForeignKey(SmartAccount, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_status_display()})"


class SatelliteInstance(models.Model):
    smart_account = models.ForeignKey(SmartAccount, on_delete=models.CASCADE, related_name="satellites")
    name = models.CharField(max_length=100)
    version = models.CharField(max_length=40)
    mode = models.CharField(max_length=20, default="Connected")
    last_sync = models.DateTimeField(null=True, blank=True)
    virtual_accounts = models.ManyToManyField(VirtualAccount, blank=True, related_name="satellites")
    # Manual (file) synchronization, cssm_portal.satellites: when the last accepted
    # synchronization file was made on the satellite, and the authorization file prepared for it.
    sync_request_at = models.DateTimeField(null=True, blank=True)
    authorization_file = models.TextField(blank=True)
    authorization_ready_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class LicenseAgreement(models.Model):
    """One published version of the Smart Software Licensing Agreement (§5.8, §5.9)."""

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="license_agreements")
    version = models.PositiveIntegerField()
    summary = models.CharField(max_length=200, help_text="What changed in this version.")
    text = models.TextField()
    published_at = models.DateTimeField()
    published_by = models.CharField(max_length=150)

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["lab", "version"], name="one_agreement_per_version")]

    def __str__(self) -> str:
        return f"Smart Software Licensing Agreement version {self.version}"


class AgreementAcceptance(models.Model):
    """A Smart Account accepted one agreement version: who and when."""

    smart_account = models.ForeignKey(SmartAccount, on_delete=models.CASCADE, related_name="agreement_acceptances")
    agreement = models.ForeignKey(LicenseAgreement, on_delete=models.CASCADE, related_name="acceptances")
    accepted_by = models.CharField(max_length=150)
    accepted_at = models.DateTimeField()

    class Meta:
        ordering = ["-accepted_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["smart_account", "agreement"], name="one_acceptance_per_version")
        ]

    def __str__(self) -> str:
        return f"{self.smart_account} accepted version {self.agreement.version}"

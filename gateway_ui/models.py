"""Simulated appliances (Secure Email Gateway and Secure Email and Web Manager)
and their Smart Licensing state (domain-notes §1, §2)."""

from datetime import timedelta

from django.conf import settings
from django.db import models

from licensing_core.alerts import GatewayAlertKind, GatewaySeverity
from licensing_core.machines import (
    AgentUpdateState,
    AuthorizationState,
    ConversionState,
    LicenseState,
    LicensingMode,
    RegistrationMode,
    RegistrationState,
    ReservationState,
)
from licensing_core.models import Lab
from licensing_core.schedules import EVAL_PERIOD

DIRECT_DISPLAY_URL = "https://smartreceiver.cisco.com/licservice/license"


class Product(models.TextChoices):
    ESA = "ESA", "Cisco Secure Email Gateway"
    SMA = "SMA", "Cisco Secure Email and Web Manager"


class TransportMode(models.TextChoices):
    DIRECT = "direct", "Direct"
    GATEWAY = "gateway", "Transport Gateway / Smart Software Manager Satellite"


class Exchange(models.TextChoices):
    """The Smart Agent exchange currently running in the background (if any)."""

    NONE = "", "None"
    REGISTER = "register", "Registration"
    DEREGISTER = "deregister", "Deregistration"
    AUTHORIZE = "authorize", "Authorization renewal"
    RENEW_ID = "renew_id", "Certificate renewal"


class Cluster(models.Model):
    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="clusters")
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["lab", "name"], name="unique_cluster_name_per_lab")]

    def __str__(self) -> str:
        return self.name


class Appliance(models.Model):
    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="appliances")
    hostname = models.CharField(max_length=253)
    product = models.CharField(max_length=3, choices=Product.choices)
    model_pid = models.CharField(max_length=16, help_text="Hardware or virtual model, e.g. C395 or C100V.")
    serial = models.CharField(max_length=64)
    virtual = models.BooleanField(default=False)
    # Classic (PAK / feature key) licences held before Smart Licensing; they
    # decide evaluation eligibility and what Device Led Conversion converts.
    classic_feature_keys = models.JSONField(default=list, blank=True)
    clock_skew_minutes = models.IntegerField(default=0)
    cluster = models.ForeignKey(Cluster, on_delete=models.SET_NULL, null=True, blank=True, related_name="members")
    fips_mode = models.BooleanField(default=False)
    software_version = models.CharField(max_length=32, default="16.0.0-000")

    # --- Smart Licensing state (machines of licensing_core.machines) ---------
    licensing_mode = models.CharField(max_length=16, choices=LicensingMode.choices, default=LicensingMode.CLASSIC)
    registration_mode = models.CharField(
        max_length=32, choices=RegistrationMode.choices, default=RegistrationMode.SMART_LICENSE_REGISTRATION
    )
    registration_state = models.CharField(
        max_length=16, choices=RegistrationState.choices, default=RegistrationState.UNREGISTERED, db_index=True
    )
    authorization_state = models.CharField(
        max_length=24, choices=AuthorizationState.choices, default=AuthorizationState.NO_LICENSE_IN_USE
    )
    reservation_state = models.CharField(max_length=16, choices=ReservationState.choices, default=ReservationState.NONE)
    dlc_state = models.CharField(
        max_length=16, choices=ConversionState.choices, default=ConversionState.NOT_STARTED, db_index=True
    )
    dlc_started_at = models.DateTimeField(null=True, blank=True, db_index=True)
    dlc_reason = models.TextField(blank=True)
    agent_version = models.CharField(max_length=16, default="1.3.7")
    agent_update_state = models.CharField(
        max_length=16, choices=AgentUpdateState.choices, default=AgentUpdateState.UP_TO_DATE
    )
    agent_updated_at = models.DateTimeField(null=True, blank=True)
    exchange = models.CharField(max_length=16, choices=Exchange.choices, default=Exchange.NONE, blank=True)
    sl_enabled_at = models.DateTimeField(null=True, blank=True)
    eval_eligible = models.BooleanField(default=False)

    # --- Transport and proxy (Security Services > Service Updates) ----------
    transport_mode = models.CharField(max_length=16, choices=TransportMode.choices, default=TransportMode.DIRECT)
    transport_url = models.URLField(max_length=500, blank=True)
    proxy_host = models.CharField(max_length=253, blank=True)
    proxy_port = models.PositiveIntegerField(null=True, blank=True)
    proxy_username = models.CharField(max_length=150, blank=True)
    proxy_password = models.CharField(max_length=150, blank=True)

    # --- Identity -----------------------------------------------------------
    device_key_pem = models.TextField(blank=True)
    id_cert_pem = models.TextField(blank=True)
    piid = models.CharField(max_length=64, blank=True)
    smart_account_name = models.CharField(max_length=200, blank=True)
    virtual_account_name = models.CharField(max_length=200, blank=True)
    export_controlled = models.BooleanField(default=False)
    cloud_services_registered = models.BooleanField(default=False)
    pending_token = models.TextField(blank=True, help_text="Held only while a registration is in flight.")
    pending_force = models.BooleanField(default=False)
    registration_error = models.TextField(blank=True)

    # --- Timers (due times, indexed for the sweeps) -------------------------
    registered_at = models.DateTimeField(null=True, blank=True)
    next_auth_renewal_at = models.DateTimeField(null=True, blank=True, db_index=True)
    auth_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_auth_success_at = models.DateTimeField(null=True, blank=True)
    next_id_renewal_at = models.DateTimeField(null=True, blank=True, db_index=True)
    id_issued_at = models.DateTimeField(null=True, blank=True)
    id_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    eval_remaining = models.DurationField(default=EVAL_PERIOD)
    eval_running_since = models.DateTimeField(null=True, blank=True, db_index=True)
    eval_notices_sent_through = models.IntegerField(null=True, blank=True)
    last_auth_attempt_at = models.DateTimeField(null=True, blank=True)
    last_auth_ok = models.BooleanField(null=True, blank=True)
    last_auth_reason = models.TextField(blank=True)
    last_id_attempt_at = models.DateTimeField(null=True, blank=True)
    last_id_ok = models.BooleanField(null=True, blank=True)
    last_id_reason = models.TextField(blank=True)
    # Bookkeeping for the sweep (gateway_ui.sweeps): the earliest due time of
    # every timer above, in the appliance's own time, kept up to date by
    # services.timers_bookkeep() on every save, so "what is due in this lab"
    # is one indexed query. `sweep_claimed_until` is a lease in wall time: a
    # worker claims an appliance with a conditional UPDATE before firing its
    # timers, and a worker that dies leaves a lease that simply runs out.
    next_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    sweep_claimed_until = models.DateTimeField(null=True, blank=True)
    # When (wall time) the running exchange was handed to Celery, and the
    # lease of whoever carries it out; a request whose message never reached a
    # worker (broker down) is picked up again by tasks.exchanges_recover_task.
    exchange_requested_at = models.DateTimeField(null=True, blank=True, db_index=True)
    exchange_claimed_until = models.DateTimeField(null=True, blank=True)

    # --- System Administration > Alerts: settings ----------------------------
    alert_from_address = models.CharField(
        max_length=254, blank=True, help_text="From Address to Use When Sending Alerts (default alert@<hostname>)."
    )
    alert_duplicate_initial_seconds = models.PositiveIntegerField(
        default=300, help_text="Initial Number of Seconds to Wait Before Sending a Duplicate Alert."
    )
    alert_duplicate_max_seconds = models.PositiveIntegerField(
        default=3600, help_text="Maximum Number of Seconds to Wait Before Sending a Duplicate Alert."
    )

    # --- License reservation and air-gap ------------------------------------
    reservation_request_code = models.CharField(max_length=200, blank=True)
    reservation_requested_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_reservation_reminder_at = models.DateTimeField(null=True, blank=True)
    reservation_auth_code = models.TextField(blank=True)
    reservation_type = models.CharField(max_length=16, blank=True)  # SPECIFIC / PERMANENT
    confirmation_code = models.CharField(max_length=16, blank=True)
    return_code = models.CharField(max_length=80, blank=True)
    vln = models.CharField(max_length=64, blank=True)
    client_certificate_pem = models.TextField(blank=True)
    client_key_pem = models.TextField(blank=True)

    class Meta:
        ordering = ["hostname"]
        constraints = [models.UniqueConstraint(fields=["lab", "hostname"], name="unique_hostname_per_lab")]
        indexes = [
            # The sweep's "what is due first" per clock skew (gateway_ui/sweeps.py) walks this, not the lab's rows.
            models.Index(
                fields=["lab", "clock_skew_minutes", "next_due_at"],
                name="appliance_skew_due_idx",
                condition=models.Q(next_due_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.hostname

    @property
    def udi(self) -> str:
        return f"PID:{self.model_pid},SN:{self.serial}"

    @property
    def smart_enabled(self) -> bool:
        return self.licensing_mode == LicensingMode.SMART

    @property
    def in_reservation_mode(self) -> bool:
        return self.registration_mode == RegistrationMode.LICENSE_RESERVATION

    @property
    def transport_display(self) -> str:
        if self.transport_mode == TransportMode.GATEWAY:
            return f"{TransportMode.GATEWAY.label} ({self.transport_url})"
        return f"Direct ({DIRECT_DISPLAY_URL})"


class ApplianceLicense(models.Model):
    """One row of System Administration > Licenses."""

    appliance = models.ForeignKey(Appliance, on_delete=models.CASCADE, related_name="licenses")
    code = models.CharField(max_length=32)
    state = models.CharField(max_length=24, choices=LicenseState.choices, default=LicenseState.NOT_REQUESTED)
    ooc_since = models.DateTimeField(null=True, blank=True, db_index=True)
    ooc_notices_sent_through = models.IntegerField(null=True, blank=True)
    reserved_count = models.PositiveIntegerField(default=0)
    reserved_end = models.DateField(null=True, blank=True)
    reserved_notices_sent_through = models.IntegerField(null=True, blank=True)
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["appliance", "code"], name="one_row_per_license")]

    def __str__(self) -> str:
        return f"{self.appliance}: {self.code} {self.state}"

    @property
    def requested(self) -> bool:
        return self.state != LicenseState.NOT_REQUESTED


class ChangeKind(models.TextChoices):
    ENABLE_SL = "enable_sl", "Enable Smart Software Licensing"
    TRANSPORT = "transport", "Smart Software Licensing transport settings"
    PROXY = "proxy", "Service Updates proxy settings"


class StagedChange(models.Model):
    """A change waiting for Commit Changes; it belongs to the appliance."""

    appliance = models.ForeignKey(Appliance, on_delete=models.CASCADE, related_name="staged_changes")
    kind = models.CharField(max_length=16, choices=ChangeKind.choices)
    payload = models.JSONField(default=dict, blank=True)
    staged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    staged_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["appliance", "kind"], name="one_staged_change_per_kind")]

    def __str__(self) -> str:
        return f"{self.appliance}: {self.get_kind_display()}"


class ApplianceAlert(models.Model):
    """An alert the appliance raised (System Administration > Alerts)."""

    appliance = models.ForeignKey(Appliance, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=40, choices=GatewayAlertKind.choices)
    code = models.CharField(max_length=4)
    severity = models.CharField(max_length=16, choices=GatewaySeverity.choices)
    alert_class = models.CharField(max_length=32, default="System")
    text = models.TextField()
    at = models.DateTimeField(help_text="Appliance time at which the alert was raised.")
    # The timer occurrence (schedules.Due.key) that raised it, if any: the
    # same occurrence never raises two alerts.
    dedupe_key = models.CharField(max_length=200, null=True, blank=True)
    emailed = models.BooleanField(default=False, help_text="Queued for the alert recipients (not a duplicate).")
    # The request (GUI, CLI, exchange) that raised it, as on the event rows, so
    # the side-by-side view links an action to the alerts it caused.
    request_id = models.UUIDField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["appliance", "-at"])]
        constraints = [models.UniqueConstraint(fields=["appliance", "dedupe_key"], name="one_alert_per_due_occurrence")]

    def __str__(self) -> str:
        return f"{self.severity}: {self.text}"


ALERT_CLASSES = (
    "System",
    "Hardware",
    "Updater",
    "Outbreak Filters",
    "Anti-Virus",
    "Anti-Spam",
    "Directory Harvest Attack Prevention",
)


class AlertMailState(models.Model):
    """Duplicate suppression per alert text ("Wait Before Sending a Duplicate
    Alert"): when the same alert was last e-mailed and how long the next
    duplicate must wait. Measured in the appliance's time."""

    appliance = models.ForeignKey(Appliance, on_delete=models.CASCADE, related_name="alert_mail_states")
    fingerprint = models.CharField(max_length=64)
    last_sent_at = models.DateTimeField()
    wait_seconds = models.PositiveIntegerField()
    suppressed = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["appliance", "fingerprint"], name="one_mail_state_per_alert_text")
        ]

    def __str__(self) -> str:
        return f"{self.appliance}: {self.fingerprint}"


class AlertRecipient(models.Model):
    appliance = models.ForeignKey(Appliance, on_delete=models.CASCADE, related_name="alert_recipients")
    address = models.EmailField()
    # {"System": ["Critical", "Warning", "Information"], ...}
    classes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["address"]
        constraints = [models.UniqueConstraint(fields=["appliance", "address"], name="one_recipient_per_address")]

    def __str__(self) -> str:
        return self.address


def default_eval_remaining() -> timedelta:
    return EVAL_PERIOD

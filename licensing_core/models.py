"""Models shared by both sides: the lab (an isolated world with its own clock),
its members, the append-only event log, job runs and the lab mailbox."""

from datetime import timedelta

from django.conf import settings
from django.db import models

from licensing_core.roles import GatewayRole


class Lab(models.Model):
    """An isolated world: its own CSSM accounts, appliances, mailbox and time.

    The lab clock is real time + `clock_offset`, or `clock_frozen_at` while
    frozen. `clock_floor` is the latest lab time ever handed out, so the clock
    never moves backwards (see licensing_core.clock).
    """

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True)
    clock_offset = models.DurationField(default=timedelta(0))
    clock_frozen_at = models.DateTimeField(null=True, blank=True)
    clock_floor = models.DateTimeField(null=True, blank=True)
    # Fault injection switches, e.g. {"cssm_unreachable": true}; see labs.faults.
    faults = models.JSONField(default=dict, blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="LabMembership", related_name="labs")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class LabMembership(models.Model):
    """A user's place in a lab. `gateway_role` is the AsyncOS user role the
    user has on every appliance of the lab (CSSM roles live in cssm_portal)."""

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lab_memberships")
    gateway_role = models.CharField(max_length=32, choices=GatewayRole.choices, default=GatewayRole.ADMINISTRATOR)
    # Lab managers move the lab clock, inject faults and manage members.
    is_manager = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["lab", "user"], name="one_membership_per_lab_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.lab} ({self.get_gateway_role_display()})"


class EventSide(models.TextChoices):
    GATEWAY = "gateway", "Appliance"
    CSSM = "cssm", "Smart Software Manager"
    LAB = "lab", "Lab"


class Event(models.Model):
    """One append-only row per state change: the audit trail, the CSSM Event
    Log and the appliance's smartlicense log are all views of this table.

    Subjects are referenced by id without a foreign key on purpose: the trail
    must outlive a removed product instance or a deleted token. Names are kept
    in `subject_name` for the same reason.
    """

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(help_text="Lab time at which the change happened.")
    side = models.CharField(max_length=10, choices=EventSide.choices)
    kind = models.CharField(max_length=64, help_text="Dotted event type, e.g. registration.succeeded.")
    message = models.TextField()
    actor = models.CharField(max_length=150, blank=True)
    appliance_id = models.BigIntegerField(null=True, blank=True)
    smart_account_id = models.BigIntegerField(null=True, blank=True)
    virtual_account_id = models.BigIntegerField(null=True, blank=True)
    product_instance_id = models.BigIntegerField(null=True, blank=True)
    subject_name = models.CharField(max_length=255, blank=True)
    old = models.JSONField(null=True, blank=True)
    new = models.JSONField(null=True, blank=True)
    request_id = models.UUIDField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["lab", "-at", "-id"]),
            models.Index(fields=["appliance_id", "-at"]),
            models.Index(fields=["virtual_account_id", "-at"]),
            models.Index(fields=["smart_account_id", "-at"]),
            models.Index(fields=["product_instance_id", "-at"]),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind}: {self.message}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Events are append-only; write a new event instead.")
        super().save(*args, **kwargs)


class JobTrigger(models.TextChoices):
    BEAT = "beat", "Celery beat"
    GUI = "gui", "Web interface"
    CLI = "cli", "Command line"
    TIME_TRAVEL = "time_travel", "Time travel"
    AGENT = "agent", "Smart Agent"


class JobStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class JobRun(models.Model):
    """A record per background job run, so pages can show last and next attempts."""

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, null=True, blank=True, related_name="job_runs")
    kind = models.CharField(max_length=64)
    trigger = models.CharField(max_length=16, choices=JobTrigger.choices)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.RUNNING)
    subject_id = models.BigIntegerField(null=True, blank=True)
    lab_time = models.DateTimeField(null=True, blank=True, help_text="Lab time the job acted at.")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["kind", "-started_at"]), models.Index(fields=["lab", "kind", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.kind} ({self.get_trigger_display()}): {self.get_status_display()}"


class MailStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"


class MailMessage(models.Model):
    """One row per e-mail the lab sends: the outbox and the Mailbox page.

    A message is written once (its `dedupe_key` is unique, so the same alert
    falling due twice cannot queue two e-mails), then claimed with a
    conditional UPDATE pending -> sending before delivery, so two workers
    never deliver it twice. An SMTP failure puts it back to pending with the
    error; the next delivery run retries it. See licensing_core.mail.
    """

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, null=True, blank=True, related_name="mail")
    lab_time = models.DateTimeField(null=True, blank=True, help_text="Lab time at which the message fell due.")
    dedupe_key = models.CharField(max_length=255, null=True, blank=True, unique=True)
    sender = models.CharField(max_length=254)
    recipients = models.JSONField(default=list)
    subject = models.CharField(max_length=998)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=MailStatus.choices, default=MailStatus.SENT)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "id"]), models.Index(fields=["lab", "-lab_time", "-id"])]

    def __str__(self) -> str:
        return self.subject


class LabTrust(models.Model):
    """The lab's Smart Software Manager trust material.

    The certificate authority issues ID certificates and signs authorization
    codes; appliances of the lab carry its certificate as their built-in trust
    anchor (as real appliances ship Cisco's). The secrets sign registration
    tokens and return codes. Created on first use by
    licensing_core.trust.lab_trust().
    """

    lab = models.OneToOneField(Lab, on_delete=models.CASCADE, related_name="trust")
    ca_key_pem = models.BinaryField()
    ca_cert_pem = models.BinaryField()
    token_secret = models.BinaryField()
    return_code_secret = models.BinaryField()

    def __str__(self) -> str:
        return f"Trust material of {self.lab}"

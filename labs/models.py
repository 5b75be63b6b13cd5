from django.db import models


class LoginFailure(models.Model):
    """A failed login, kept briefly to throttle password guessing (in the
    database so every web process sees the same count)."""

    username = models.CharField(max_length=150, db_index=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True, db_index=True)
    at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.username} from {self.ip_address} at {self.at:%Y-%m-%d %H:%M}"


class LabOrigin(models.Model):
    """How a lab was made, so Reset can build it again: empty, the demo world,
    a scenario, an imported file or a customer's paste (kept here)."""

    class Kind(models.TextChoices):
        EMPTY = "empty", "Empty"
        DEMO = "demo", "Demo world"
        SCENARIO = "scenario", "Scenario"
        IMPORTED = "imported", "Imported file"
        PASTE = "paste", "Customer's license_smart output"

    lab = models.OneToOneField("licensing_core.Lab", on_delete=models.CASCADE, related_name="origin")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    scenario = models.CharField(max_length=80, blank=True)
    document = models.JSONField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.lab}: {self.get_kind_display()}{' ' + self.scenario if self.scenario else ''}"

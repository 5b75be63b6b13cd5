"""AsyncOS user roles (domain-notes §8.1). CSSM roles live in cssm_portal."""

from django.db import models


class GatewayRole(models.TextChoices):
    ADMINISTRATOR = "administrator", "Administrator"
    OPERATOR = "operator", "Operator"
    TECHNICIAN = "technician", "Technician"
    READ_ONLY_OPERATOR = "read_only", "Read-Only Operator"
    GUEST = "guest", "Guest"

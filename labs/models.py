from django.db import models


class LoginFailure(models.Model):
    """A failed login, kept briefly to throttle password guessing (in the
    database so every web process sees the same count)."""

    username = models.CharField(max_length=150, db_index=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True, db_index=True)
    at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.username} from {self.ip_address} at {self.at:%Y-%m-%d %H:%M}"

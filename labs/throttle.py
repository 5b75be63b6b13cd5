"""Login throttling: after too many failures for a user name or from an
address, refuse further attempts for a while. Wall-clock time on purpose:
security happens in the real world, not on a lab's clock."""

from datetime import timedelta

from django.db.models import Q

from labs.models import LoginFailure
from licensing_core.clock import wall_now

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)


def _recent(*, username: str, ip_address: str | None):
    since = wall_now() - WINDOW
    match = Q(username__iexact=username)
    if ip_address:
        match |= Q(ip_address=ip_address)
    return LoginFailure.objects.filter(match, at__gte=since)


def login_blocked_for(*, username: str, ip_address: str | None) -> timedelta | None:
    """How long this user name or address must wait, or None if it may try."""
    failures = list(_recent(username=username, ip_address=ip_address).order_by("-at").values_list("at", flat=True))
    if len(failures) < MAX_FAILURES:
        return None
    wait = failures[MAX_FAILURES - 1] + WINDOW - wall_now()
    return wait if wait > timedelta(0) else None


def login_failure_record(*, username: str, ip_address: str | None) -> None:
    LoginFailure.objects.create(username=username[:150], ip_address=ip_address, at=wall_now())
    # Keep the table small: old rows no longer count.
    LoginFailure.objects.filter(at__lt=wall_now() - WINDOW * 4).delete()


def login_failures_clear(*, username: str) -> None:
    LoginFailure.objects.filter(username__iexact=username).delete()

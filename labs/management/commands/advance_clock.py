from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError

from licensing_core.clock import ClockError, lab_now
from licensing_core.models import Lab
from licensing_core.sweeps import lab_advance


class Command(BaseCommand):
    help = "Move a lab's clock forward, processing everything that falls due on the way, in order."

    def add_arguments(self, parser):
        parser.add_argument("--lab", required=True, help="Lab slug, e.g. demo")
        when = parser.add_mutually_exclusive_group(required=True)
        when.add_argument("--days", type=float, help="How many days to advance (may be fractional)")
        when.add_argument("--to", help="Lab date or date-time to advance to (ISO 8601, UTC if no zone)")

    def handle(self, *args, lab: str, days: float | None, to: str | None, **options):
        try:
            lab_obj = Lab.objects.get(slug=lab)
        except Lab.DoesNotExist:
            raise CommandError(f"There is no lab {lab!r}.") from None
        if days is not None:
            if days <= 0:
                raise CommandError("--days must be a positive number.")
            target = lab_now(lab_obj) + timedelta(days=days)
        else:
            try:
                target = datetime.fromisoformat(to)
            except ValueError:
                raise CommandError(f"--to {to!r} is not an ISO 8601 date or date-time.") from None
            if target.tzinfo is None:
                target = target.replace(tzinfo=UTC)
        try:
            result = lab_advance(lab=lab_obj, to=target)
        except ClockError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{lab_obj.slug}: {result.started_at:%Y-%m-%d %H:%M} -> {result.finished_at:%Y-%m-%d %H:%M} UTC, "
            f"{result.steps} step(s), {result.processed} due item(s) processed."
        )

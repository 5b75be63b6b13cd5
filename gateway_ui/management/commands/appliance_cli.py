"""``manage.py appliance_cli --lab LAB [--user USERNAME] HOSTNAME``: the appliance's command line.

Reads commands from standard input until ``exit`` or end of input. The session runs
as a lab member (default: the lab's first manager) with that member's AsyncOS role.
Smart Agent exchanges run in this process (Celery eager), so each command ends with
the outcome on screen, as the GUI's background task would leave it.
"""

import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from gateway_ui.cli import run_cli
from gateway_ui.models import Appliance
from licensing_core.models import Lab, LabMembership


class Command(BaseCommand):
    help = "Open the AsyncOS-style command line of a lab appliance (license_smart, featurekey, commit ...)."
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("hostname", help="Appliance host name, e.g. esa1.example.com")
        parser.add_argument("--lab", required=True, help="Lab slug, e.g. demo")
        parser.add_argument("--user", help="Lab member to run as (default: the lab's first manager)")

    def handle(self, *args, **options):
        lab = Lab.objects.filter(slug=options["lab"]).first()
        if lab is None:
            raise CommandError(f"No lab with the slug {options['lab']!r}.")
        appliance = Appliance.objects.select_related("lab").filter(lab=lab, hostname=options["hostname"]).first()
        if appliance is None:
            names = ", ".join(Appliance.objects.filter(lab=lab).values_list("hostname", flat=True)) or "none"
            raise CommandError(f"No appliance {options['hostname']!r} in lab {lab.slug!r} (appliances: {names}).")
        memberships = LabMembership.objects.select_related("user").filter(lab=lab)
        if options.get("user"):
            user = get_user_model().objects.filter(username=options["user"]).first()
            membership = memberships.filter(user=user).first() if user else None
            if membership is None:
                raise CommandError(f"{options['user']!r} is not a member of lab {lab.slug!r}.")
        else:
            membership = memberships.filter(is_manager=True).order_by("id").first()
            if membership is None:
                raise CommandError(f"Lab {lab.slug!r} has no manager; name a member with --user.")

        stdin = options.get("stdin") or sys.stdin
        interactive = hasattr(stdin, "isatty") and stdin.isatty()

        def write(text: str) -> None:
            self.stdout.write(text, ending="")
            self.stdout.flush()

        from config.celery import app

        eager = app.conf.task_always_eager
        app.conf.task_always_eager = True  # exchanges run here, so the transcript shows their outcome
        try:
            run_cli(
                appliance=appliance,
                user=membership.user,
                role=membership.gateway_role,
                lines=stdin,
                write=write,
                echo=not interactive,
            )
        finally:
            app.conf.task_always_eager = eager

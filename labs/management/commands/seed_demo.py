from django.core.management.base import BaseCommand

from labs.demo import DEMO_PASSWORD, DEMO_USERS, demo_lab_build


class Command(BaseCommand):
    help = "Create (or complete) the demo lab: Example Corp, its virtual accounts, appliances and demo users."

    def handle(self, *args, **options):
        lab = demo_lab_build()
        self.stdout.write(self.style.SUCCESS(f"Demo lab ready: {lab.name} ({lab.slug})"))
        self.stdout.write(f"Demo logins (password {DEMO_PASSWORD!r}):")
        for username, (_, description) in DEMO_USERS.items():
            self.stdout.write(f"  {username:<11} {description}")

import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from labs.docs import DOC_PATH, scenarios_markdown
from labs.scenarios import scenarios
from labs.scenarios.builder import BuildError, cssm_served
from labs.services import LabError, lab_create, lab_import_new
from labs.transfer import TransferError, document_parse, lab_export_json
from licensing_core.models import Lab


class Command(BaseCommand):
    help = "The scenario library: list, load into a new lab, export a lab, import a lab file, write the docs."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="List the scenarios")
        load = sub.add_parser("load", help="Build a scenario in a new lab")
        load.add_argument("name")
        load.add_argument("--lab", required=True, help="Short name (slug) of the new lab")
        load.add_argument("--manager", default="admin", help="User who becomes the lab manager (default admin)")
        export = sub.add_parser("export", help="Write a lab as JSON to standard output")
        export.add_argument("lab")
        imp = sub.add_parser("import", help="Create a new lab from an export file")
        imp.add_argument("file", help="Path of the file, or - for standard input")
        imp.add_argument("--lab", help="Short name of the new lab (default: the exported lab's, plus -imported)")
        imp.add_argument("--manager", default="admin")
        docs = sub.add_parser("docs", help="Write docs/scenarios.md from the registry")
        docs.add_argument("--check", action="store_true", help="Fail if docs/scenarios.md is out of date")

    def handle(self, *args, action: str, **options):
        getattr(self, f"_{action}")(**options)

    def _list(self, **options):
        for s in scenarios():
            self.stdout.write(f"{s.name:<32} {s.title}")

    def _manager(self, username: str):
        User = get_user_model()
        user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"There is no user {username!r}; run seed_demo or pass --manager.")
        return user

    def _load(self, *, name: str, lab: str, manager: str, **options):
        user = self._manager(manager)
        try:
            with cssm_served():
                created = lab_create(name=f"Scenario: {name}", slug=lab, manager=user, scenario=name)
        except (LabError, BuildError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Lab {created.slug} holds scenario {name}: {created.description}"))
        self.stdout.write(f"Open /labs/{created.slug}/ (see docs/scenarios.md#{name} for what to look at).")

    def _export(self, *, lab: str, **options):
        try:
            lab_obj = Lab.objects.get(slug=lab)
        except Lab.DoesNotExist:
            raise CommandError(f"There is no lab {lab!r}.") from None
        self.stdout.write(lab_export_json(lab=lab_obj))

    def _import(self, *, file: str, lab: str | None, manager: str, **options):
        try:
            text = sys.stdin.read() if file == "-" else open(file, encoding="utf-8").read()  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from None
        try:
            document = document_parse(text)
            slug = lab or f"{document['lab'].get('slug', 'lab')}-imported"[:60]
            created = lab_import_new(document=document, name="", slug=slug, manager=self._manager(manager))
        except (TransferError, LabError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Imported as lab {created.slug} ({created.name})."))

    def _docs(self, *, check: bool, **options):
        text = scenarios_markdown()
        if check:
            current = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""
            if current != text:
                raise CommandError("docs/scenarios.md is out of date: run manage.py scenario docs.")
            self.stdout.write("docs/scenarios.md is up to date.")
            return
        DOC_PATH.write_text(text, encoding="utf-8")
        self.stdout.write(f"Wrote {DOC_PATH}.")

"""Export then import gives a lab whose pages match the original."""

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from cssm_portal.models import ProductInstance, RegistrationToken
from labs.services import lab_clone, lab_create
from labs.tests.scenario_helpers import page_text
from labs.transfer import FORMAT, VERSION, TransferError, document_parse, lab_export

PAGES = [
    "sl:esa1.example.com",
    "licenses:esa1.example.com",
    "alerts:esa1.example.com",
    "portal:instances",
    "portal:licenses",
    "portal:alerts",
    "timeline",
    "mailbox",
]


def _normalise(text: str, lab) -> str:
    for instance in ProductInstance.objects.filter(lab=lab):
        text = text.replace(str(instance.piid), "<piid>")
    for token in RegistrationToken.objects.filter(virtual_account__smart_account__lab=lab):
        text = text.replace(token.value, "<token>").replace(token.value[:16], "<token>")
    text = text.replace(lab.slug, "<lab>").replace(lab.name, "<name>")
    return re.sub(r"\b\d{2}:\d{2}:\d{2}\b(?= \(lab\))", "", text)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_round_trip_reproduces_the_pages(settings, live_server, client, demo_lab):
    settings.CSSM_BASE_URL = live_server.url
    admin = get_user_model().objects.get(username="admin")
    original = lab_create(name="Original", slug="orig", manager=admin, scenario="slr-reauth-pending-confirmation")
    copy = lab_clone(lab=original, name="Copy", slug="copy", manager=admin)
    client.force_login(admin)
    for key in PAGES + ["portal:instance:esa1.example.com"]:
        before = _normalise(page_text(client, original, key), original)
        after = _normalise(page_text(client, copy, key), copy)
        assert before == after, key
    # The copy is a lab of its own: new product instance ids, same clock.
    assert not set(ProductInstance.objects.filter(lab=copy).values_list("piid", flat=True)) & set(
        ProductInstance.objects.filter(lab=original).values_list("piid", flat=True)
    )
    copy.refresh_from_db()
    assert copy.clock_frozen_at == original.clock_frozen_at


@pytest.mark.django_db
def test_export_holds_every_part_of_the_lab(demo_lab):
    document = lab_export(lab=demo_lab)
    assert document["format"] == FORMAT
    assert document["version"] == VERSION
    for label in ("cssm_portal.SmartAccount", "cssm_portal.LicensePool", "gateway_ui.Appliance",
                  "licensing_core.LabMembership"):  # fmt: skip
        assert document["models"][label], label
    assert json.loads(json.dumps(document)) == document


@pytest.mark.django_db
def test_import_command_round_trip_and_clear_refusals(demo_lab, tmp_path, capsys):
    path = tmp_path / "demo.json"
    call_command("scenario", "export", "demo", stdout=path.open("w"))
    call_command("scenario", "import", str(path), "--lab", "demo-copy")
    assert "Imported as lab demo-copy" in capsys.readouterr().out
    with pytest.raises(CommandError, match="already exists"):
        call_command("scenario", "import", str(path), "--lab", "demo-copy")
    newer = json.loads(path.read_text())
    newer["version"] = 2
    path.write_text(json.dumps(newer))
    with pytest.raises(CommandError, match="This file was written by format version 2; this lab reads version 1."):
        call_command("scenario", "import", str(path), "--lab", "demo-newer")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ('{"a": 1}', "not a Smart Licensing Lab export"),
        ('{"format": "smart-licensing-lab", "version": 0}', "format version 0; this lab reads version 1"),
        ('{"format": "smart-licensing-lab", "version": 1}', "incomplete"),
    ],
)
def test_bad_files_get_a_clear_message(text, message):
    with pytest.raises(TransferError, match=message):
        document_parse(text)

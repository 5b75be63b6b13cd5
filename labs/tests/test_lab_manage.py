"""Lab management pages: new, clone, reset, delete, export/import, members, action faults,
and the paste page. Refusals are messages; outsiders 404; non-managers 403 with a reason."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cssm_portal.models import LicensePool, RegistrationToken, VirtualAccount
from cssm_portal.services import token_create
from gateway_ui.models import Appliance
from labs.tests.test_paste import EVAL_12_DAYS
from labs.transfer import lab_export_json
from licensing_core.clock import lab_now
from licensing_core.models import Event, Lab, LabMembership

pytestmark = pytest.mark.django_db


def _body(response) -> str:
    return response.content.decode()


class TestNewLab:
    def test_the_home_page_offers_the_library_with_descriptions(self, client, login_as):
        login_as("admin")
        body = _body(client.get("/"))
        assert "New lab" in body
        assert "Out of compliance, grace day 12" in body
        assert "Advance 18 days to see the grace period expire" in body
        assert "Reproduce from a customer's output" in body

    def test_create_empty_and_demo_labs(self, client, login_as):
        login_as("operator")
        response = client.post("/labs/new/", {"name": "Mine", "slug": "mine", "kind": "empty"}, follow=True)
        assert "Lab Mine created." in _body(response)
        assert LabMembership.objects.get(lab__slug="mine", user__username="operator").is_manager
        client.post("/labs/new/", {"name": "World", "slug": "world", "kind": "demo"})
        assert Appliance.objects.filter(lab__slug="world").count() == 3

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"name": "x", "slug": "demo", "kind": "empty"}, "A lab called &#x27;demo&#x27; already exists"),
            ({"name": "x", "slug": "Bad slug", "kind": "empty"}, "Short name: Enter a valid"),
            ({"name": "x", "slug": "x", "kind": "scenario"}, "Choose a scenario from the library."),
            ({"name": "x", "slug": "x", "kind": "scenario", "scenario": "nope"}, "Select a valid choice"),
        ],
    )
    def test_refusals_are_messages(self, client, login_as, data, message):
        login_as("admin")
        response = client.post("/labs/new/", data, follow=True)
        assert response.status_code == 200
        assert message in _body(response)
        assert not Lab.objects.filter(slug="x").exists()


class TestManage:
    def test_clone_reset_delete(self, client, login_as, demo_lab):
        login_as("admin")
        response = client.post("/labs/demo/clone/", {"name": "Copy", "slug": "copy"}, follow=True)
        assert "Demo lab cloned as Copy." in _body(response)
        assert Appliance.objects.filter(lab__slug="copy").count() == 3
        body = _body(client.post("/labs/copy/reset/", {}, follow=True))
        assert "Confirm the reset" in body
        Appliance.objects.filter(lab__slug="copy", hostname="sma1.example.com").delete()
        body = _body(client.post("/labs/copy/reset/", {"confirm": "1"}, follow=True))
        assert "Copy was reset to how it was made." in body
        assert Appliance.objects.filter(lab__slug="copy").count() == 3
        body = _body(client.post("/labs/copy/delete/", {"confirm": "demo"}, follow=True))
        assert "Type the lab&#x27;s short name (copy) to confirm the deletion." in body
        assert Lab.objects.filter(slug="copy").exists()
        body = _body(client.post("/labs/copy/delete/", {"confirm": "copy"}, follow=True))
        assert "Lab Copy deleted." in body
        assert not Lab.objects.filter(slug="copy").exists()

    def test_non_managers_get_403_with_a_reason_and_outsiders_404(self, client, login_as, demo_lab, django_user_model):
        login_as("operator")
        for url, data in [
            ("/labs/demo/clone/", {"name": "c", "slug": "c"}),
            ("/labs/demo/reset/", {"confirm": "1"}),
            ("/labs/demo/delete/", {"confirm": "demo"}),
            ("/labs/demo/members/add/", {"username": "guest", "gateway_role": "guest"}),
            ("/labs/demo/faults/clock-skew/", {"hostname": "esa1.example.com", "minutes": "5"}),
        ]:
            response = client.post(url, data)
            assert response.status_code == 403, url
            assert "Only a lab manager can do this" in _body(response)
        assert client.get("/labs/demo/export/").status_code == 403
        assert "Manage this lab" not in _body(client.get("/labs/demo/"))
        client.force_login(django_user_model.objects.create_user("outsider"))
        assert client.post("/labs/demo/delete/", {"confirm": "demo"}).status_code == 404
        assert client.get("/labs/demo/export/").status_code == 404
        assert client.get("/labs/demo/split/esa1.example.com/").status_code == 404
        assert Lab.objects.filter(slug="demo").exists()


class TestExportImport:
    def test_export_downloads_and_import_creates_a_lab(self, client, login_as, demo_lab):
        login_as("admin")
        response = client.get("/labs/demo/export/")
        assert response["Content-Disposition"].startswith('attachment; filename="lab-demo-')
        document = json.loads(response.content)
        assert document["format"] == "smart-licensing-lab"
        upload = SimpleUploadedFile("demo.json", response.content, content_type="application/json")
        body = _body(client.post("/labs/import/", {"file": upload, "name": "Back", "slug": "back"}, follow=True))
        assert "Imported as lab Back." in body
        assert Appliance.objects.filter(lab__slug="back").count() == 3

    def test_import_refusals(self, client, login_as, demo_lab, settings):
        login_as("admin")
        newer = json.loads(lab_export_json(lab=demo_lab))
        newer["version"] = 2
        upload = SimpleUploadedFile("n.json", json.dumps(newer).encode())
        body = _body(
            client.post("/labs/import/", {"file": upload, "name": "N", "slug": "n", "back": "demo"}, follow=True)
        )
        assert "This file was written by format version 2; this lab reads version 1." in body
        settings.LAB_FILE_MAX_BYTES = 1024
        upload = SimpleUploadedFile("big.json", b" " * 5000)
        body = _body(client.post("/labs/import/", {"file": upload, "name": "B", "slug": "b"}, follow=True))
        assert "the limit is 1 KiB" in body
        upload = SimpleUploadedFile("bad.json", b"\xff\xfe")
        body = _body(client.post("/labs/import/", {"file": upload, "name": "B", "slug": "b"}, follow=True))
        assert "not UTF-8 text" in body
        assert not Lab.objects.filter(slug__in=["n", "b"]).exists()


class TestMembersAndFaults:
    def test_members(self, client, login_as, demo_lab, django_user_model):
        login_as("admin")
        django_user_model.objects.create_user("newbie")
        body = _body(
            client.post("/labs/demo/members/add/", {"username": "newbie", "gateway_role": "operator"}, follow=True)
        )
        assert "newbie is a member (Operator)." in body
        body = _body(
            client.post("/labs/demo/members/add/", {"username": "ghost", "gateway_role": "guest"}, follow=True)
        )
        assert "There is no user &#x27;ghost&#x27;." in body
        newbie = LabMembership.objects.get(lab=demo_lab, user__username="newbie")
        client.post("/labs/demo/members/remove/", {"user": newbie.user_id})
        assert not LabMembership.objects.filter(pk=newbie.pk).exists()
        admin = LabMembership.objects.get(lab=demo_lab, user__username="admin")
        body = _body(client.post("/labs/demo/members/remove/", {"user": admin.user_id}, follow=True))
        assert "You cannot remove yourself" in body

    def test_clock_skew(self, client, login_as, demo_lab):
        login_as("admin")
        client.post("/labs/demo/faults/clock-skew/", {"hostname": "esa1.example.com", "minutes": "-90"})
        assert Appliance.objects.get(lab=demo_lab, hostname="esa1.example.com").clock_skew_minutes == -90
        assert Event.objects.filter(lab=demo_lab, kind="lab.fault.clock_skew").exists()
        body = _body(client.post("/labs/demo/faults/clock-skew/", {"hostname": "nope", "minutes": "5"}, follow=True))
        assert "Choose an appliance of this lab." in body
        body = _body(
            client.post("/labs/demo/faults/clock-skew/", {"hostname": "esa1.example.com", "minutes": "x"}, follow=True)
        )
        assert "Enter a whole number." in body

    def test_revoke_a_token_picked_from_the_active_ones(self, client, login_as, demo_lab):
        va = VirtualAccount.objects.get(smart_account__lab=demo_lab, name="ESA")
        token = token_create(
            va=va, actor="sa-admin", description="Copied", expire_days=30, max_uses=None, export_controlled=False,
            now=lab_now(demo_lab),
        )  # fmt: skip
        login_as("admin")
        assert "Copied" in _body(client.get("/labs/demo/"))
        client.post("/labs/demo/faults/revoke-token/", {"token": token.pk})
        assert RegistrationToken.objects.get(pk=token.pk).revoked_at is not None
        body = _body(client.post("/labs/demo/faults/revoke-token/", {"token": token.pk}, follow=True))
        assert "already been revoked" in body
        body = _body(client.post("/labs/demo/faults/revoke-token/", {"token": "x"}, follow=True))
        assert "Choose one of the lab&#x27;s active tokens." in body

    def test_licence_shortage(self, client, login_as, demo_lab):
        esa = VirtualAccount.objects.get(smart_account__lab=demo_lab, name="ESA")
        lab_va = VirtualAccount.objects.get(smart_account__lab=demo_lab, name="Lab")
        pool = LicensePool.objects.filter(virtual_account=esa, purchased__gt=0).first()
        before = pool.purchased
        login_as("admin")
        body = _body(
            client.post(
                "/labs/demo/faults/shortage/", {"pool": pool.pk, "target": lab_va.pk, "quantity": 1}, follow=True
            )
        )
        assert "moved from ESA to Lab" in body
        pool.refresh_from_db()
        assert pool.purchased == before - 1
        body = _body(
            client.post(
                "/labs/demo/faults/shortage/", {"pool": pool.pk, "target": lab_va.pk, "quantity": 10**5}, follow=True
            )
        )
        assert "can be transferred (the balance)" in body


class TestPastePage:
    def test_check_shows_what_was_understood_and_not(self, client, login_as):
        login_as("admin")
        text = EVAL_12_DAYS + "garbage line\n"
        response = client.post("/labs/reproduce/", {"text": text, "action": "check"})
        body = _body(response)
        assert response.status_code == 200
        assert "Evaluation Period Remaining" in body
        assert "12 days 3 hours 0 minutes 0 seconds" in body
        assert "garbage line" in body
        assert "not a STATUS or SUMMARY line" in body
        assert "Let the evaluation period run for 77 days 21 h" in body
        assert "Build the lab" in body

    def test_upload_and_refusals(self, client, login_as, settings):
        login_as("admin")
        upload = SimpleUploadedFile("status.txt", EVAL_12_DAYS.encode())
        body = _body(client.post("/labs/reproduce/", {"file": upload, "action": "check"}))
        assert "Evaluation Mode" in body
        response = client.post("/labs/reproduce/", {"text": "", "action": "check"})
        assert response.status_code == 422
        assert "The paste is empty" in _body(response)
        settings.LAB_UPLOAD_MAX_BYTES = 100
        response = client.post("/labs/reproduce/", {"text": EVAL_12_DAYS, "action": "check"})
        assert response.status_code == 422
        assert "The paste is longer than 100 bytes; paste STATUS and SUMMARY only." in _body(response)

    def test_build_refuses_nonsense_and_a_bad_short_name(self, client, login_as):
        login_as("admin")
        response = client.post("/labs/reproduce/", {"text": "hello", "action": "build", "name": "x", "slug": "x"})
        assert response.status_code == 422
        assert "No STATUS or SUMMARY line was recognised" in _body(response)
        response = client.post(
            "/labs/reproduce/", {"text": EVAL_12_DAYS, "action": "build", "name": "x", "slug": "demo"}
        )
        assert response.status_code == 422
        assert "already exists" in _body(response)
        assert not Lab.objects.filter(slug="x").exists()

"""The lab page: lab time, Advance time, timeline and mailbox."""

from datetime import UTC, datetime, timedelta

import pytest

from licensing_core.clock import clock_freeze, lab_now
from licensing_core.events import event_record
from licensing_core.models import Lab

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 1, tzinfo=UTC)


class TestLabPage:
    def test_a_manager_advances_time_from_the_lab_page(self, client, login_as, demo_lab):
        clock_freeze(lab=demo_lab)
        before = lab_now(Lab.objects.get(pk=demo_lab.pk))
        login_as("admin")
        response = client.post(f"/labs/{demo_lab.slug}/advance/", {"days": "7"}, follow=True)
        assert lab_now(Lab.objects.get(pk=demo_lab.pk)) == before + timedelta(days=7)
        assert "due item(s) processed" in response.content.decode()

    def test_advance_to_a_date_and_bad_input_gets_a_message(self, client, login_as, demo_lab):
        clock_freeze(lab=demo_lab)
        login_as("admin")
        body = client.post(f"/labs/{demo_lab.slug}/advance/", {"date": "not a date"}, follow=True).content.decode()
        assert "Enter the date to advance to" in body
        body = client.post(f"/labs/{demo_lab.slug}/advance/", {"days": "13"}, follow=True).content.decode()
        assert "Choose one of the offered steps" in body
        body = client.post(f"/labs/{demo_lab.slug}/advance/", {"date": "2001-01-01"}, follow=True).content.decode()
        assert "never moves backwards" in body

    def test_only_managers_move_the_clock(self, client, login_as, demo_lab):
        login_as("operator")
        assert client.post(f"/labs/{demo_lab.slug}/advance/", {"days": "1"}).status_code == 403
        assert "Only a lab manager can move the lab clock" in client.get(f"/labs/{demo_lab.slug}/").content.decode()

    def test_outsiders_get_404(self, client, demo_lab, django_user_model):
        client.force_login(django_user_model.objects.create_user("outsider"))
        assert client.get(f"/labs/{demo_lab.slug}/").status_code == 404
        assert client.get(f"/labs/{demo_lab.slug}/mailbox/").status_code == 404
        assert client.post(f"/labs/{demo_lab.slug}/advance/", {"days": "1"}).status_code == 404

    def test_the_timeline_shows_events_and_mail_by_lab_time(self, client, login_as, demo_lab, settings):
        from django.core.mail import EmailMessage

        settings.EMAIL_BACKEND = "licensing_core.mail.MailboxBackend"
        event_record(lab=demo_lab, at=START, side="gateway", kind="x", message="The product is registered <b>")
        EmailMessage(
            "Expiry of evaluation period",
            "body",
            to=["ops@example.com"],
            headers={"X-Lab-Id": str(demo_lab.pk), "X-Lab-Time": (START + timedelta(days=1)).isoformat()},
        ).send()
        login_as("guest")
        body = client.get(f"/labs/{demo_lab.slug}/").content.decode()
        assert body.index("Expiry of evaluation period") < body.index("The product is registered &lt;b&gt;")
        mailbox = client.get(f"/labs/{demo_lab.slug}/mailbox/").content.decode()
        assert "Expiry of evaluation period" in mailbox
        assert "ops@example.com" in mailbox


class TestFaults:
    def test_a_manager_toggles_faults_from_the_lab_page(self, client, login_as, demo_lab):
        login_as("admin")
        body = client.get(f"/labs/{demo_lab.slug}/").content.decode()
        assert "Fault injection" in body
        assert "CSSM unreachable" in body
        client.post(f"/labs/{demo_lab.slug}/faults/", {"fault": "cssm_unreachable", "on": "1"})
        client.post(f"/labs/{demo_lab.slug}/faults/", {"fault": "cssm_slow", "on": "1", "seconds": "30"})
        assert Lab.objects.get(pk=demo_lab.pk).faults == {"cssm_unreachable": True, "cssm_slow": 30}
        client.post(f"/labs/{demo_lab.slug}/faults/", {"fault": "cssm_unreachable", "on": "0"})
        assert Lab.objects.get(pk=demo_lab.pk).faults == {"cssm_slow": 30}

    def test_bad_fault_input_gets_a_message(self, client, login_as, demo_lab):
        login_as("admin")
        body = client.post(f"/labs/{demo_lab.slug}/faults/", {"fault": "meteor"}, follow=True).content.decode()
        assert "Unknown fault." in body
        body = client.post(
            f"/labs/{demo_lab.slug}/faults/", {"fault": "cssm_slow", "on": "1", "seconds": "999"}, follow=True
        ).content.decode()
        assert "between 1 and 120 seconds" in body
        body = client.post(
            f"/labs/{demo_lab.slug}/faults/", {"fault": "cssm_slow", "on": "1", "seconds": "x"}, follow=True
        ).content.decode()
        assert "whole number of seconds" in body
        assert Lab.objects.get(pk=demo_lab.pk).faults == {}

    def test_only_managers_inject_faults(self, client, login_as, demo_lab):
        login_as("operator")
        assert (
            client.post(f"/labs/{demo_lab.slug}/faults/", {"fault": "cssm_unreachable", "on": "1"}).status_code == 403
        )
        assert "Fault injection" not in client.get(f"/labs/{demo_lab.slug}/").content.decode()


class TestApplianceList:
    """A fleet lab's appliances, a page at a time, found by host name."""

    def _fleet(self, lab, n):
        from gateway_ui.models import Appliance

        Appliance.objects.bulk_create(
            Appliance(lab=lab, hostname=f"fleet{i:03d}.example.com", product="ESA", model_pid="C395",
                      serial=f"FLEET{i:03d}")
            for i in range(n)
        )  # fmt: skip

    def _rows(self, body):
        section = body[body.index('id="appliances"') : body.index("</section>", body.index('id="appliances"'))]
        return [part.split("</th>")[0] for part in section.split("<tr><th>")[1:]], section

    def test_pages_of_fifty_with_previous_and_next(self, client, login_as, demo_lab):
        self._fleet(demo_lab, 120)
        login_as("admin")
        rows, section = self._rows(client.get(f"/labs/{demo_lab.slug}/").content.decode())
        assert len(rows) == 50
        assert rows[0] == "esa1.example.com"
        assert "Appliances 1–50 of 123" in section
        assert "page=2" in section
        rows, section = self._rows(client.get(f"/labs/{demo_lab.slug}/?page=3").content.decode())
        assert rows == [f"fleet{i:03d}.example.com" for i in range(98, 120)] + ["sma1.example.com"]
        assert "Appliances 101–123 of 123" in section
        # A page out of range shows the last one; garbage shows the first: no error.
        assert self._rows(client.get(f"/labs/{demo_lab.slug}/?page=99").content.decode())[0][-1] == "sma1.example.com"
        assert self._rows(client.get(f"/labs/{demo_lab.slug}/?page=x").content.decode())[0][0] == "esa1.example.com"

    def test_find_by_host_name(self, client, login_as, demo_lab):
        self._fleet(demo_lab, 120)
        login_as("admin")
        rows, section = self._rows(client.get(f"/labs/{demo_lab.slug}/?q=FLEET11").content.decode())
        assert rows == [f"fleet11{i}.example.com" for i in range(10)]
        assert '10 appliances with "FLEET11" in the host name.' in section
        rows, section = self._rows(client.get(f"/labs/{demo_lab.slug}/?q=nothing-like-it").content.decode())
        assert rows == []
        assert "No appliance of this lab has" in section

    def test_the_page_runs_the_same_queries_for_a_few_appliances_and_many(self, client, login_as, demo_lab):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        login_as("admin")

        def queries():
            with CaptureQueriesContext(connection) as ctx:
                assert client.get(f"/labs/{demo_lab.slug}/").status_code == 200
            return len(ctx.captured_queries)

        few = queries()
        self._fleet(demo_lab, 300)
        assert queries() == few

    def test_the_clock_skew_fault_takes_a_typed_host_name_in_a_large_lab(self, client, login_as, demo_lab):
        self._fleet(demo_lab, 120)
        login_as("admin")
        body = client.get(f"/labs/{demo_lab.slug}/").content.decode()
        assert '<input id="skew-host" name="hostname"' in body
        skew = {"hostname": "fleet042.example.com", "minutes": 90}
        response = client.post(f"/labs/{demo_lab.slug}/faults/clock-skew/", skew)
        assert response.status_code == 302
        from gateway_ui.models import Appliance

        assert Appliance.objects.get(lab=demo_lab, hostname="fleet042.example.com").clock_skew_minutes == 90

"""The side-by-side view: the appliance's status next to the portal's product instance,
with the rows of one request highlighted on both sides."""

import re

import pytest
from django.contrib.auth import get_user_model

from labs.services import lab_create
from labs.tests.scenario_helpers import visible_text
from licensing_core.models import Event

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ooc_lab(demo_lab, settings, live_server):
    settings.CSSM_BASE_URL = live_server.url
    admin = get_user_model().objects.get(username="admin")
    return lab_create(name="OOC", slug="ooc", manager=admin, scenario="ooc-grace-day-12")


def test_both_sides_and_an_action_linked_by_its_request_id(client, ooc_lab):
    client.force_login(get_user_model().objects.get(username="admin"))
    url = "/labs/ooc/split/esa1.example.com/"
    text = visible_text(client.get(url).content.decode())
    assert "Out of Compliance (" in text  # the appliance's own status partial
    assert "Insufficient Licenses" in text  # the portal's side
    assert "Email Security Appliance Outbreak Filters Out Of Compliance" in text
    # Read-only here: no action form of the appliance page.
    assert 'name="action"' not in client.get(url).content.decode()

    response = client.post(
        "/appliance/ooc/esa1.example.com/smart-licensing/action/", {"action": "Renew Authorization Now"}
    )
    rid = response["X-Request-ID"]
    sides = set(Event.objects.filter(lab=ooc_lab, request_id=rid).values_list("side", flat=True))
    assert sides == {"gateway", "cssm"}  # the exchange wrote rows on both sides

    html = client.get(url).content.decode()  # the latest request is highlighted by default
    assert f"Highlighted: request <code>{rid}</code>" in html
    current = re.search(r'<tr class="current">(.*?)</tr>', html, re.S).group(1)
    assert rid[:8] in current
    for event in Event.objects.filter(lab=ooc_lab, request_id=rid):
        assert event.message in visible_text(current)
    # The appliance alert that renewal raised carries the same request id and is highlighted too.
    from gateway_ui.models import ApplianceAlert

    raised = ApplianceAlert.objects.filter(request_id=rid)
    assert raised.exists()
    highlighted = re.findall(r'<li class="current">(.*?)</li>', html, re.S)
    assert any(alert.text in visible_text(li) for alert in raised for li in highlighted)
    # A request id in the URL chooses the highlight: one of no row highlights nothing.
    assert '<tr class="current">' not in client.get(url + "?rid=" + "0" * 32).content.decode()
    # A malformed one is ignored (the latest request again).
    assert f"Highlighted: request <code>{rid}</code>" in client.get(url + "?rid=nonsense").content.decode()


def test_htmx_refresh_returns_the_panels_only(client, ooc_lab):
    client.force_login(get_user_model().objects.get(username="admin"))
    response = client.get("/labs/ooc/split/esa1.example.com/", headers={"HX-Request": "true"})
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="split-panels"')
    assert "<html" not in body

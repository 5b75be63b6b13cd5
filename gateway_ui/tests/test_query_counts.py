"""The appliance's main pages run a fixed number of queries, whatever the lab and the appliance hold:
one licence row or all of them, no alerts, events, staged changes or other appliances or many.

The counts are the page's whole request: session, user, the appliance with the user's membership, the staged
changes, the appliance switcher (two: its neighbours before and after) (+ the licence rows on Licenses, + the
members on a clustered appliance). The status partial that htmx polls every 2 s has no switcher, and on an
appliance with Smart Software Licensing enabled it shows nothing the staged changes decide, so it does not read them."""

from datetime import timedelta

import pytest
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse

from gateway_ui.models import ApplianceAlert, ApplianceLicense, ChangeKind, Cluster, StagedChange
from gateway_ui.views import ApplianceUrls
from licensing_core.catalogue import licenses_for
from licensing_core.machines import LicenseState
from licensing_core.models import Event
from licensing_core.roles import GatewayRole
from tests.factories import LAB_EPOCH, ApplianceFactory, LabFactory, LabMembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

PAGES = {"smart_licensing": 6, "licenses": 7, "sl_status": 3}


def _world(*, clustered: bool):
    lab = LabFactory()
    user = UserFactory()
    LabMembershipFactory(lab=lab, user=user, gateway_role=GatewayRole.ADMINISTRATOR)
    cluster = Cluster.objects.create(lab=lab, name="cl") if clustered else None
    appliance = ApplianceFactory(lab=lab, licensing_mode="smart", cluster=cluster, hostname="gw.example.com")
    code = licenses_for(appliance.product)[0].code
    ApplianceLicense.objects.create(appliance=appliance, code=code, state=LicenseState.EVAL)
    return lab, user, appliance


def _grow(lab, appliance, n: int) -> None:
    """Many of everything the appliance or its lab can hold."""
    cluster = appliance.cluster
    for i in range(n):
        ApplianceFactory(lab=lab, hostname=f"other{i:03d}.example.com", cluster=cluster)
    have = set(appliance.licenses.values_list("code", flat=True))
    ApplianceLicense.objects.bulk_create(
        ApplianceLicense(appliance=appliance, code=lic.code, state=LicenseState.IN_COMPLIANCE)
        for lic in licenses_for(appliance.product)
        if lic.code not in have
    )
    ApplianceAlert.objects.bulk_create(
        ApplianceAlert(appliance=appliance, kind="registration_failed", code="1", severity="Warning", text=f"a{i}",
                       at=LAB_EPOCH + timedelta(minutes=i))
        for i in range(n)
    )  # fmt: skip
    Event.objects.bulk_create(
        Event(lab=lab, at=LAB_EPOCH, side="gateway", kind="test", message=f"e{i}", appliance_id=appliance.pk)
        for i in range(n)
    )
    for kind in ChangeKind.values:
        StagedChange.objects.create(appliance=appliance, kind=kind, staged_at=LAB_EPOCH)


def _counts(client, appliance) -> dict[str, int]:
    from django.db import connection

    counts = {}
    for name in PAGES:
        url = reverse(f"gateway:{name}", args=[appliance.lab.slug, appliance.hostname])
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        assert response.status_code == 200, name
        counts[name] = len(ctx.captured_queries)
    return counts


@pytest.mark.parametrize("clustered", [False, True], ids=["standalone", "clustered"])
def test_main_pages_run_the_same_queries_for_one_row_and_for_many(client, clustered):
    lab, user, appliance = _world(clustered=clustered)
    client.force_login(user)
    if clustered:  # the pages themselves are shown in machine mode
        session = client.session
        session[f"cluster_mode:{appliance.cluster_id}"] = "machine"
        session.save()
    small = _counts(client, appliance)
    _grow(lab, appliance, 60)
    assert appliance.licenses.count() == len(licenses_for(appliance.product)) > 1
    large = _counts(client, appliance)
    # The members of a cluster are listed on its appliances' pages (the polled partial has no mode bar).
    expected = {name: n + (clustered and name != "sl_status") for name, n in PAGES.items()}
    assert small == expected
    assert large == expected


def test_the_pages_show_what_they_read_in_those_queries(client):
    lab, user, appliance = _world(clustered=False)
    client.force_login(user)
    url = reverse("gateway:smart_licensing", args=[lab.slug, appliance.hostname])
    assert "No Changes Pending" in client.get(url).content.decode()
    _grow(lab, appliance, 3)
    text = client.get(url).content.decode()
    assert "Commit Changes" in text
    assert "No Changes Pending" not in text
    for host in ("gw.example.com", "other000.example.com", "other002.example.com"):
        assert f'<option value="{reverse("gateway:smart_licensing", args=[lab.slug, host])}"' in text
    assert f"selected>{appliance.hostname}</option>" in text
    for name in ("smartlicense_log", "service_updates", "licenses", "alerts", "changes", "sl_transport"):
        assert f'="{reverse(f"gateway:{name}", args=[lab.slug, appliance.hostname])}"' in text, name
    text = client.get(reverse("gateway:licenses", args=[lab.slug, appliance.hostname])).content.decode()
    assert text.count('<tr data-code="') == len(licenses_for(appliance.product))


def test_an_unknown_page_name_is_an_error_not_an_empty_link():
    urls = ApplianceUrls("/appliance/lab/host/")
    assert urls["licenses"] == "/appliance/lab/host/licenses/"
    with pytest.raises(NoReverseMatch):
        urls["no_such_page"]


@pytest.mark.parametrize("hostname", ["esa 1.example.com", "ésa1.example.com", "a%b?c#d.example.com", "a:b@c~d"])
def test_switcher_urls_are_those_reverse_gives(client, hostname):
    lab, user, appliance = _world(clustered=False)
    other = ApplianceFactory(lab=lab, hostname=hostname)
    client.force_login(user)
    text = client.get(reverse("gateway:licenses", args=[lab.slug, appliance.hostname])).content.decode()
    assert f'<option value="{reverse("gateway:smart_licensing", args=[lab.slug, other.hostname])}">' in text


def test_the_role_is_the_one_of_the_lab_in_the_url(client):
    """The membership is joined to the appliance: the same user and hostname in two labs, two roles."""
    user = UserFactory()
    labs = {}
    for role in (GatewayRole.OPERATOR, GatewayRole.READ_ONLY_OPERATOR):
        lab = LabFactory()
        LabMembershipFactory(lab=lab, user=user, gateway_role=role)
        ApplianceFactory(lab=lab, hostname="same.example.com", licensing_mode="smart")
        labs[role] = lab
    outsider_lab = LabFactory()
    ApplianceFactory(lab=outsider_lab, hostname="same.example.com")
    client.force_login(user)
    for role, lab in labs.items():
        text = client.get(reverse("gateway:smart_licensing", args=[lab.slug, "same.example.com"])).content.decode()
        assert f"({GatewayRole(role).label})" in text
    assert (
        client.get(reverse("gateway:smart_licensing", args=[outsider_lab.slug, "same.example.com"])).status_code == 404
    )
    assert (
        client.get(reverse("gateway:smart_licensing", args=[labs[GatewayRole.OPERATOR].slug, "x"])).status_code == 404
    )


def test_the_switcher_lists_the_neighbours_and_leads_to_the_lab_page_for_the_others(client):
    lab, user, appliance = _world(clustered=False)
    client.force_login(user)
    for i in range(30):
        ApplianceFactory(lab=lab, hostname=f"a{i:03d}.example.com")  # before gw.example.com
        ApplianceFactory(lab=lab, hostname=f"z{i:03d}.example.com")  # after it
    html = client.get(reverse("gateway:smart_licensing", args=[lab.slug, appliance.hostname])).content.decode()
    switcher = html[html.index('<select id="switch-appliance"') : html.index("</select>")]
    shown = [f"a{i:03d}.example.com" for i in range(20, 30)] + ["gw.example.com"]
    shown += [f"z{i:03d}.example.com" for i in range(10)]
    assert [line.split(">")[1].split("<")[0] for line in switcher.split("<option")[1:]] == [
        *shown,
        "All appliances of the lab…",
    ]
    assert "a019.example.com" not in switcher
    assert "z010.example.com" not in switcher
    assert reverse("labs:detail", kwargs={"slug": lab.slug}) + "#appliances" in switcher


def test_the_staged_changes_are_read_where_a_page_shows_them(client):
    """Classic licensing: the page and the polled partial say Enable waits for Commit Changes (reading the staged
    changes: one query more for the partial than once Smart Software Licensing is enabled)."""
    from django.db import connection

    lab, user, appliance = _world(clustered=False)
    appliance.licensing_mode = "classic"
    appliance.save(update_fields=["licensing_mode"])
    client.force_login(user)
    note = "Enabling Smart Software Licensing is waiting to be committed."
    page = reverse("gateway:smart_licensing", args=[lab.slug, appliance.hostname])
    partial = reverse("gateway:sl_status", args=[lab.slug, appliance.hostname])
    assert note not in client.get(page).content.decode()
    assert note not in client.get(partial).content.decode()
    StagedChange.objects.create(appliance=appliance, kind=ChangeKind.ENABLE_SL, staged_at=LAB_EPOCH)
    text = client.get(page).content.decode()
    assert note in text
    assert "Commit Changes" in text
    with CaptureQueriesContext(connection) as ctx:
        assert note in client.get(partial).content.decode()
    assert len(ctx.captured_queries) == PAGES["sl_status"] + 1

"""Fixed cost at fleet scale: every list page and a sweep with nothing due run
the same number of queries in a virtual account of 10 product instances and
of 10,000 (half of them registered simulated appliances, 1 % failing to
connect with open alerts, one extra event per instance).

The labs are built by seed_fleet (bulk, real rows). Query counts only: the
times are measured by the benchmarks (make bench, docs/benchmarks.md).
"""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext

from cssm_portal.models import ProductInstance, SmartAccount, VirtualAccount
from gateway_ui.models import Appliance
from labs.management.commands.seed_fleet import TEMPLATE_HOST
from licensing_core.clock import lab_now
from licensing_core.models import Lab
from licensing_core.sweeps import earliest_due, lab_sweep

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SMALL, LARGE = 10, 10_000


def _urls(lab: Lab) -> dict[str, str]:
    sa = SmartAccount.objects.filter(lab=lab).order_by("pk").first()
    va = VirtualAccount.objects.get(smart_account=sa, name="Fleet")
    c = f"/cssm/{lab.slug}/{sa.pk}/"
    v = f"{c}inventory/{va.pk}/"
    g = f"/appliance/{lab.slug}/{TEMPLATE_HOST}/"
    return {
        "cssm general (tokens)": v,
        "cssm licenses": f"{v}licenses/",
        "cssm licenses with transactions": f"{v}licenses/?tx=1",
        "cssm product instances": f"{v}instances/",
        "cssm product instances, sorted by last contact": f"{v}instances/?sort=last_contact&dir=desc",
        "cssm product instances, search": f"{v}instances/?q=fleet",
        "cssm va event log": f"{v}events/",
        "cssm alerts": f"{c}alerts/",
        "cssm reports: licenses": f"{c}reports/?report=licenses",
        "cssm reports: product instances": f"{c}reports/?report=instances",
        "cssm activity: transactions": f"{c}activity/",
        "cssm activity: events": f"{c}activity/events/",
        "cssm virtual accounts": f"{c}virtual-accounts/",
        "gateway smart software licensing": f"{g}smart-licensing/",
        "gateway licenses": f"{g}licenses/",
        "gateway alerts": f"{g}alerts/",
        "gateway smartlicense log": f"{g}logs/smartlicense/",
        "labs: lab page": f"/labs/{lab.slug}/",
    }


def _measure(client, lab: Lab) -> dict[str, int]:
    counts = {}
    for name, url in _urls(lab).items():
        assert client.get(url).status_code == 200, name  # warm-up: alert rules settle, trust material exists
        reset_queries()
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        assert response.status_code == 200, name
        counts[name] = len(ctx.captured_queries)
    lab.refresh_from_db()
    now = lab_now(lab)
    due = earliest_due(lab)
    assert due is None or due > now, "the lab must have nothing due for the idle sweep"
    lab_sweep(lab=lab, now=now)  # warm-up
    with CaptureQueriesContext(connection) as ctx:
        processed = lab_sweep(lab=lab, now=now)
    assert processed == 0
    counts["sweep with nothing due"] = len(ctx.captured_queries)
    with CaptureQueriesContext(connection) as ctx:
        earliest_due(lab)
    counts["next due (all sweeps)"] = len(ctx.captured_queries)
    return counts


def _seed(slug: str, *, appliances: int) -> None:
    call_command(
        "seed_fleet", lab=slug, appliances=appliances, registered=appliances // 2, tokens=30,
        alerts=max(1, appliances // 100), events=appliances, no_certificates=True,
        stdout=open("/dev/null", "w"),  # noqa: SIM115
    )  # fmt: skip


def test_list_pages_and_idle_sweep_run_a_fixed_number_of_queries(client, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    _seed("scale", appliances=SMALL)
    lab = Lab.objects.get(slug="scale")
    client.force_login(get_user_model().objects.get(username="bench"))
    small = _measure(client, lab)

    _seed("scale", appliances=LARGE - SMALL)
    va = VirtualAccount.objects.get(smart_account__lab=lab, name="Fleet")
    assert ProductInstance.objects.filter(virtual_account=va).count() == LARGE
    assert Appliance.objects.filter(lab=lab, registration_state="registered").count() == LARGE // 2
    large = _measure(client, lab)

    grew = {name: (small[name], large[name]) for name in small if large[name] != small[name]}
    assert not grew, f"query counts that grew from {SMALL} to {LARGE} rows (small, large): {grew}"

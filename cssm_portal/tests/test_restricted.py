"""Export-restricted licences: not authorized for a product registered with a token that
does not allow export-controlled functionality; "Restricted License Not Available" (§5.8)."""

import pytest

from cssm_portal import restricted, services
from cssm_portal.models import CssmAlert, LicensePool, LicenseUsage, ProductInstance
from cssm_portal.tests.conftest import tag
from licensing_core import catalogue
from licensing_core.alerts import CssmAlertType as T

pytestmark = pytest.mark.django_db

PXE = tag("envelope_encryption")


def _open(account):
    return list(
        CssmAlert.objects.filter(
            smart_account=account, alert_type=T.RESTRICTED_LICENSE_NOT_AVAILABLE, cleared_at__isnull=True
        )
    )


def test_the_catalogue_marks_pxe_encryption_only():
    marked = [lic.code for lic in catalogue.ESA_LICENSES + catalogue.SMA_LICENSES if lic.export_restricted]
    assert marked == ["envelope_encryption"]


@pytest.fixture
def pools(va):
    for code in ("envelope_encryption", "VOF"):
        LicensePool.objects.update_or_create(virtual_account=va, tag=tag(code), defaults={"purchased": 5})


def _registered(agent, va, now, *, export):
    token = services.token_create(
        va=va, actor="admin", description="", expire_days=30, max_uses=None, export_controlled=export, now=now
    )
    status, answer = agent.register(token.value)
    assert status == 200
    assert answer["export_controlled"] is export
    return ProductInstance.objects.get(udi=agent.udi)


def _authorize(agent, codes):
    status, answer = agent.send("authorize", {"usage": [{"tag": tag(c), "count": 1} for c in codes]})
    assert status == 200, answer
    return {item["tag"]: item["status"] for item in answer["licenses"]}


def test_a_restricted_licence_is_not_authorized_without_export_control(agent, va, account, now, pools):
    instance = _registered(agent, va, now, export=False)
    assert _authorize(agent, ["VOF", "envelope_encryption"]) == {tag("VOF"): "authorized", PXE: "not_authorized"}
    # The refused licence is not in use.
    assert set(LicenseUsage.objects.filter(instance=instance).values_list("tag", flat=True)) == {tag("VOF")}
    [alert] = _open(account)
    assert alert.severity == "Minor"
    assert alert.virtual_account == va  # Source: the product's Virtual Account
    assert alert.message == (
        f'Product instance "{instance.name}" requested Email Security Appliance PXE Encryption, an '
        "export-controlled license, but it was registered with a token that does not allow export-controlled "
        "functionality. Register it again with a token that allows it."
    )
    # The next renewal asks again: still one open alert.
    _authorize(agent, ["VOF", "envelope_encryption"])
    assert len(_open(account)) == 1
    # Once it no longer requests the licence, the alert clears.
    assert _authorize(agent, ["VOF"]) == {tag("VOF"): "authorized"}
    assert not _open(account)


def test_export_controlled_registration_may_use_it(agent, va, account, now, pools):
    instance = _registered(agent, va, now, export=True)
    assert _authorize(agent, ["envelope_encryption"]) == {PXE: "authorized"}
    assert LicenseUsage.objects.get(instance=instance).tag == PXE
    assert not _open(account)


def test_split_costs_no_query_when_the_instance_may_use_restricted_licences(
    agent, va, now, pools, django_assert_num_queries
):
    instance = _registered(agent, va, now, export=True)
    usage = [(PXE, 1), (tag("VOF"), 2)]
    with django_assert_num_queries(0):
        assert restricted.restricted_split(instance=instance, usage=usage, now=now) == (usage, [])


def test_products_without_restricted_licences_are_untouched(make_agent, account, now, django_assert_num_queries):
    sma = account.virtual_accounts.get(name="SMA")
    agent = make_agent(pid="M395")
    token = services.token_create(
        va=sma, actor="admin", description="", expire_days=30, max_uses=None, export_controlled=False, now=now
    )
    assert agent.register(token.value, product="SMA")[0] == 200
    instance = ProductInstance.objects.select_related("virtual_account__smart_account").get(udi=agent.udi)
    usage = [(tag("imh", "SMA"), 1)]
    with django_assert_num_queries(0):
        assert restricted.restricted_split(instance=instance, usage=usage, now=now) == (usage, [])


def test_removing_the_instance_clears_its_restricted_alert(agent, va, account, now, pools):
    instance = _registered(agent, va, now, export=False)
    _authorize(agent, ["envelope_encryption"])
    assert len(_open(account)) == 1
    services.instance_remove(instance=instance, actor="admin", now=now)
    assert _open(account) == []

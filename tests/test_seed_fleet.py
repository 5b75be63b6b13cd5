"""seed_fleet builds large labs in bulk, with rows the rest of the lab accepts
as its own: clones of the registered template authorize over HTTP with their
own key and certificate, tokens parse with the lab's secret, failing
instances carry their alerts."""

import io

import pytest
from django.core.management import CommandError, call_command

from cssm_portal.models import CssmAlert, LicensePool, LicenseUsage, ProductInstance, RegistrationToken
from gateway_ui import services as gw
from gateway_ui.clock import appliance_now
from gateway_ui.models import Appliance, ApplianceLicense
from labs.management.commands.seed_fleet import REQUESTED_CODES, TEMPLATE_HOST
from labs.scenarios.builder import cssm_served
from licensing_core import codes, pki
from licensing_core.clock import lab_now
from licensing_core.models import Event, Lab
from licensing_core.trust import lab_trust

pytestmark = pytest.mark.django_db(transaction=True)


def _seed(**kwargs):
    out = io.StringIO()
    call_command("seed_fleet", stdout=out, **kwargs)
    return out.getvalue()


def test_builds_instances_registered_appliances_tokens_alerts_and_events():
    out = _seed(lab="fleet", appliances=30, registered=6, tokens=4, alerts=3, events=7)
    assert "30 product instance(s) in Fleet (6 registered appliance(s))" in out
    lab = Lab.objects.get(slug="fleet")
    instances = ProductInstance.objects.filter(lab=lab, virtual_account__name="Fleet")
    assert instances.count() == 30
    assert instances.values("udi").distinct().count() == 30
    # Every instance uses the requested licences (and the registered ones what their appliance asked for).
    assert not instances.filter(usage__isnull=True).exists()
    for tag, in_use in LicenseUsage.objects.filter(instance__in=instances).values_list("tag", "count"):
        pool = LicensePool.objects.get(virtual_account__name="Fleet", virtual_account__smart_account__lab=lab, tag=tag)
        assert pool.purchased >= 30
    # Certificates: issued by the lab CA for the instance's own UDI.
    trust = lab_trust(lab=lab, now=lab_now(lab))
    for inst in instances[:5]:
        info = pki.verify_certificate(
            ca_cert_pem=bytes(trust.ca_cert_pem), cert_pem=inst.certificate_pem.encode(), now=lab_now(lab)
        )
        assert info.udi == inst.udi
    # Registered appliances: the template's state, each its own identity and product instance.
    apps = Appliance.objects.filter(lab=lab, registration_state="registered")
    assert apps.count() == 6
    template = apps.get(hostname=TEMPLATE_HOST)
    for a in apps:
        assert a.authorization_state == "authorized"
        assert a.next_due_at == template.next_due_at is not None
        assert instances.filter(udi=a.udi, piid=a.piid).exists()
        states = dict(ApplianceLicense.objects.filter(appliance=a).values_list("code", "state"))
        assert {states[c] for c in REQUESTED_CODES} == {"in_compliance"}
        assert Event.objects.filter(appliance_id=a.pk, kind="registration.succeeded").exists()
    assert apps.values("device_key_pem").distinct().count() == 6
    # Tokens are real: they parse with the lab's token secret.
    tokens = RegistrationToken.objects.filter(
        virtual_account__smart_account__lab=lab, description__startswith="Fleet token"
    )
    assert tokens.count() == 4
    for tok in tokens:
        assert codes.token_parse(tok.value, secret_key=bytes(trust.token_secret)).token_id == str(tok.token_id)
    # Failing instances carry their open alert, raised by the portal's own rule.
    failing = CssmAlert.objects.filter(
        smart_account__lab=lab, cleared_at__isnull=True, alert_type__icontains="Failed to Connect"
    )
    assert failing.count() == 3
    assert Event.objects.filter(lab=lab, kind="cssm.fleet.note").count() == 7


def test_a_cloned_appliance_renews_its_authorization_over_http():
    _seed(lab="fleet2", appliances=3, registered=3, tokens=0)
    lab = Lab.objects.get(slug="fleet2")
    clone = Appliance.objects.filter(lab=lab, registration_state="registered").exclude(hostname=TEMPLATE_HOST).first()
    before = ProductInstance.objects.get(lab=lab, udi=clone.udi).recent_nonces
    with cssm_served():
        ok = gw.authorize_exchange(appliance=clone, now=appliance_now(clone))
    assert ok, Appliance.objects.get(pk=clone.pk).last_auth_reason
    inst = ProductInstance.objects.get(lab=lab, udi=clone.udi)
    assert inst.recent_nonces != before  # the CSSM checked the clone's signature and recorded the exchange


def test_running_again_adds_instances_to_the_same_lab():
    _seed(lab="fleet3", appliances=5, registered=2, tokens=0)
    _seed(lab="fleet3", appliances=5, registered=2, tokens=0)
    lab = Lab.objects.get(slug="fleet3")
    assert ProductInstance.objects.filter(lab=lab, virtual_account__name="Fleet").count() == 10
    assert Appliance.objects.filter(lab=lab, registration_state="registered").count() == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"appliances": -1}, "zero or more"),
        ({"appliances": 2, "registered": 3}, "--registered cannot be more"),
        ({"appliances": 2, "alerts": 3}, "--alerts cannot be more"),
        ({"appliances": 2, "batch": 0}, "--batch"),
    ],
)
def test_refuses_bad_counts_with_a_message(kwargs, message):
    with pytest.raises(CommandError, match=message):
        _seed(lab="bad", **kwargs)
    assert not Lab.objects.filter(slug="bad").exists()

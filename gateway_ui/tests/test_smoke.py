"""Service-level checks of the exchanges against the real CSSM endpoint (live server)."""

import pytest
from django.urls import reverse

from gateway_ui import services
from gateway_ui.clock import appliance_now
from gateway_ui.models import Appliance


@pytest.mark.django_db(transaction=True)
def test_register_direct_then_cloud_services_and_dlc(cssm, enabled, make_token, pools):
    services.agent_register(appliance=enabled, token=make_token(), force=False, now=appliance_now(enabled))
    enabled.refresh_from_db()
    assert enabled.registration_state == "registered", enabled.registration_error
    assert enabled.smart_account_name == "Example Corp"
    assert enabled.cloud_services_registered
    assert enabled.authorization_state == "authorized"
    assert enabled.eval_running_since is None
    assert enabled.dlc_state == "in_progress"  # esa1 holds classic licences
    assert enabled.licenses.get(code="VOF").state == "in_compliance"


@pytest.mark.django_db(transaction=True)
def test_smart_account_name_with_unsupported_characters_breaks_talos_fetch(cssm, enabled, make_token):
    from cssm_portal.models import SmartAccount

    SmartAccount.objects.filter(lab=enabled.lab).update(name="Example Corp €")
    services.agent_register(appliance=enabled, token=make_token(), force=False, now=appliance_now(enabled))
    alert = enabled.alerts.filter(kind="registration_failed").first()
    assert alert is not None
    assert "could not fetch the Cisco Talos certificate" in alert.text


@pytest.mark.django_db(transaction=True)
def test_deregister_unreachable_keeps_registration_and_says_why(cssm, enabled, make_token, settings):
    services.agent_register(appliance=enabled, token=make_token(), force=False, now=appliance_now(enabled))
    settings.CSSM_BASE_URL = "http://127.0.0.1:9"
    services.agent_deregister(appliance=enabled, now=appliance_now(enabled))
    enabled.refresh_from_db()
    assert enabled.registration_state == "registered"
    assert "Unable to reach Smart Software Manager" in enabled.registration_error
    assert enabled.alerts.filter(kind="deregistration_failed").exists()


@pytest.mark.django_db(transaction=True)
def test_clock_out_of_sync_is_refused_with_its_message(cssm, enabled, make_token):
    Appliance.objects.filter(pk=enabled.pk).update(clock_skew_minutes=90)
    enabled.refresh_from_db()
    services.agent_register(appliance=enabled, token=make_token(), force=False, now=appliance_now(enabled))
    enabled.refresh_from_db()
    assert enabled.registration_state == "reg_failed"
    assert "clock" in enabled.registration_error.lower()


@pytest.mark.django_db(transaction=True)
def test_used_up_token_is_refused(cssm, demo_lab, make_token):
    from licensing_core.roles import GatewayRole

    token = make_token(max_uses=1)
    results = []
    for host in ("esa1.example.com", "esa2.example.com"):
        a = Appliance.objects.get(lab=demo_lab, hostname=host)
        now = appliance_now(a)
        services.sl_enable(appliance=a, user=None, now=now)
        services.changes_commit(appliance=a, user=None, role=GatewayRole.ADMINISTRATOR, now=now)
        services.agent_register(appliance=a, token=token, force=False, now=now)
        a.refresh_from_db()
        results.append((a.registration_state, a.registration_error))
    assert results[0][0] == "registered"
    assert results[1][0] == "reg_failed"
    assert "uses" in results[1][1].lower()


def test_status_partial_polls_only_while_an_exchange_runs(client, login_as, enabled):
    login_as("admin")
    Appliance.objects.filter(pk=enabled.pk).update(registration_state="registering", exchange="register")
    url = reverse("gateway:sl_status", args=[enabled.lab.slug, enabled.hostname])
    body = client.get(url).content.decode()
    assert 'hx-trigger="every 2s"' in body
    assert "Unregistered - Registration Pending" in body
    Appliance.objects.filter(pk=enabled.pk).update(registration_state="unregistered", exchange="")
    body = client.get(url).content.decode()
    assert "hx-trigger" not in body
    assert "<html" not in body  # the partial only


def test_configuration_summary_notes_licensing_is_not_saved(client, login_as, esa1):
    login_as("admin")
    url = reverse("gateway:not_simulated", args=[esa1.lab.slug, esa1.hostname, "configuration-summary"])
    assert "Smart Licensing related configuration is not saved" in client.get(url).content.decode()

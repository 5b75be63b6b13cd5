"""Every refusal shows its message on the page (wrong state, bad token, bad code, bad URL, wrong role)."""

import pytest
from django.urls import reverse

from gateway_ui import services
from gateway_ui.clock import appliance_now
from gateway_ui.models import Appliance, Cluster
from licensing_core.roles import GatewayRole


def url(appliance, name, **kw):
    return reverse(f"gateway:{name}", args=[appliance.lab.slug, appliance.hostname])


def text(response):
    return response.content.decode()


@pytest.fixture
def admin(client, login_as):
    login_as("admin")
    return client


# --- wrong state ---------------------------------------------------------------------


def test_register_before_enabling_is_refused(admin, esa1):
    r = admin.post(url(esa1, "sl_register"), {"token": "abc"}, follow=True)
    assert "Smart Software Licensing is not enabled" in text(r)


def test_deregister_while_unregistered_is_refused(admin, enabled):
    r = admin.post(url(enabled, "sl_deregister"), follow=True)
    assert "Deregister is available only while the product is registered." in text(r)


def test_renew_authorization_before_registering_is_refused(admin, enabled):
    r = admin.post(url(enabled, "sl_action"), {"action": "Renew Authorization Now"}, follow=True)
    assert "Renew Authorization Now is available only after successful registration." in text(r)


def test_enable_twice_is_refused(admin, enabled):
    r = admin.post(url(enabled, "sl_enable"), follow=True)
    assert "Smart Software Licensing is already enabled." in text(r)


def test_install_without_request_code_is_refused(admin, enabled):
    admin.post(url(enabled, "sl_mode"), {"mode": "license_reservation"})
    r = admin.post(url(enabled, "sl_install"), {"source": "paste", "code": "<x/>"}, follow=True)
    assert "Generate a request code before installing an authorization code." in text(r)


def test_commit_with_nothing_pending(admin, esa1):
    r = admin.post(url(esa1, "changes"), {"do": "commit"}, follow=True)
    assert "No Changes Pending" in text(r)


# --- bad token ----------------------------------------------------------------------------


def test_empty_token_is_refused(admin, enabled):
    r = admin.post(url(enabled, "sl_register"), {"token": "   "}, follow=True)
    assert "Token cannot be empty" in text(r)


@pytest.mark.django_db(transaction=True)
def test_foreign_token_fails_registration_with_the_reason(client, cssm, demo_lab, login_as):
    login_as("admin")
    esa1 = Appliance.objects.get(lab=demo_lab, hostname="esa1.example.com")
    now = appliance_now(esa1)
    services.sl_enable(appliance=esa1, user=None, now=now)
    services.changes_commit(appliance=esa1, user=None, role=GatewayRole.ADMINISTRATOR, now=now)
    r = client.post(url(esa1, "sl_register"), {"token": "bm90IGEgdG9rZW4="}, follow=True)
    body = text(r)
    assert "Unregistered - Registration Failed" in body
    esa1.refresh_from_db()
    assert esa1.registration_error
    assert esa1.registration_error in body.replace("&#x27;", "'")
    assert esa1.alerts.filter(kind="registration_failed").exists()


@pytest.mark.django_db(transaction=True)
def test_unreachable_transport_gateway_fails_with_the_reason(client, demo_lab, login_as, settings):
    settings.SMART_AGENT_HTTP_TIMEOUT = 2
    login_as("admin")
    esa1 = Appliance.objects.get(lab=demo_lab, hostname="esa1.example.com")
    now = appliance_now(esa1)
    services.sl_enable(appliance=esa1, user=None, now=now)
    services.changes_commit(appliance=esa1, user=None, role=GatewayRole.ADMINISTRATOR, now=now)
    client.post(
        url(esa1, "sl_transport"),
        {"mode": "gateway", "url": "http://127.0.0.1:9/Transportgateway/services/DeviceRequestHandler"},
    )
    client.post(url(esa1, "changes"), {"do": "commit"})
    r = client.post(url(esa1, "sl_register"), {"token": "abc"}, follow=True)
    assert "Unable to reach Smart Software Manager at http://127.0.0.1:9" in text(r)
    assert "Transport Gateway / Smart Software Manager Satellite (http://127.0.0.1:9" in text(r)


# --- bad code ------------------------------------------------------------------------------


def test_damaged_authorization_code_is_refused(admin, enabled):
    admin.post(url(enabled, "sl_mode"), {"mode": "license_reservation"})
    admin.post(url(enabled, "sl_request_code"))
    r = admin.post(url(enabled, "sl_install"), {"source": "paste", "code": "not a code"}, follow=True)
    assert "The authorization code is damaged or is not an authorization code." in text(r)


def test_empty_authorization_code_is_refused(admin, enabled):
    admin.post(url(enabled, "sl_mode"), {"mode": "license_reservation"})
    admin.post(url(enabled, "sl_request_code"))
    r = admin.post(url(enabled, "sl_install"), {"source": "upload"}, follow=True)
    assert "Paste the authorization code or upload the file that contains it." in text(r)


# --- bad URL -----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "ftp://tg.example.com/", "not a url", "http://"])
def test_invalid_gateway_url_is_refused(admin, enabled, bad):
    r = admin.post(url(enabled, "sl_transport"), {"mode": "gateway", "url": bad}, follow=True)
    assert "Entered Invalid Gateway URL" in text(r)
    assert not enabled.staged_changes.filter(kind="transport").exists()


def test_http_gateway_url_refused_in_fips_mode(admin, enabled):
    Appliance.objects.filter(pk=enabled.pk).update(fips_mode=True)
    r = admin.post(url(enabled, "sl_transport"), {"mode": "gateway", "url": "http://tg.example.com/x"}, follow=True)
    assert "In FIPS mode, Transport Gateway supports only HTTPS." in text(r)


def test_transport_change_is_staged_until_commit(admin, enabled):
    r = admin.post(url(enabled, "sl_transport"), {"mode": "gateway", "url": "https://tg.example.com/x"}, follow=True)
    assert "Transport settings will be updated after commit" in text(r)
    assert "Commit Changes" in text(r)
    admin.post(url(enabled, "changes"), {"do": "commit"})
    enabled.refresh_from_db()
    assert enabled.transport_url == "https://tg.example.com/x"


def test_proxy_user_name_with_domain_is_refused(admin, esa1):
    r = admin.post(
        url(esa1, "service_updates"),
        {"host": "proxy.example.com", "port": 3128, "username": "CORP\\alice"},
        follow=True,
    )
    assert "DOMAIN\\user is not supported" in text(r)


# --- wrong role ---------------------------------------------------------------------------


def test_read_only_operator_can_stage_but_not_commit(client, login_as, esa1):
    login_as("readonly")
    r = client.post(url(esa1, "sl_enable"), follow=True)
    assert "Commit your changes" in text(r)
    r = client.post(url(esa1, "changes"), {"do": "commit"}, follow=True)
    assert "can make and submit changes but cannot commit them" in text(r)
    esa1.refresh_from_db()
    assert esa1.licensing_mode == "classic"


def test_guest_cannot_view_smart_licensing(client, login_as, esa1):
    login_as("guest")
    r = client.get(url(esa1, "smart_licensing"))
    assert r.status_code == 403
    assert "Guest role is not allowed" in text(r)


def test_operator_cannot_enable_reservation(client, login_as, enabled):
    login_as("operator")
    r = client.post(url(enabled, "sl_mode"), {"mode": "license_reservation"})
    assert r.status_code == 403
    assert "Operator role is not allowed" in text(r)


def test_operator_cannot_enable_smart_licensing(client, login_as, esa1):
    login_as("operator")
    r = client.post(url(esa1, "sl_enable"))
    assert r.status_code == 403


def test_read_only_cannot_request_licenses(client, login_as, enabled):
    login_as("readonly")
    r = client.post(url(enabled, "licenses"), {"license": ["VOF"]})
    assert r.status_code == 403
    assert "Read-Only Operator role is not allowed" in text(r)


def test_appliance_outside_users_labs_is_404(client, django_user_model, esa1):
    stranger = django_user_model.objects.create_user("stranger", password="x-very-long-1")
    client.force_login(stranger)
    assert client.get(url(esa1, "smart_licensing")).status_code == 404


# --- cluster mode ---------------------------------------------------------------------------


def test_licensing_pages_work_in_machine_mode_only(admin, demo_lab, esa1):
    cluster = Cluster.objects.create(lab=demo_lab, name="cl1")
    Appliance.objects.filter(hostname__in=["esa1.example.com", "esa2.example.com"]).update(cluster=cluster)
    r = admin.get(url(esa1, "smart_licensing"))
    assert "available only in machine mode" in text(r)
    r = admin.post(url(esa1, "sl_enable"))
    assert r.status_code == 409
    r = admin.post(url(esa1, "cluster_mode"), {"mode": "machine", "machine": "esa2.example.com"}, follow=True)
    assert "Current mode: Machine (esa2.example.com)" in text(r)
    assert "Enable Smart Software Licensing" in text(r)


def test_enable_on_all_machines_in_cluster(admin, demo_lab, esa1):
    cluster = Cluster.objects.create(lab=demo_lab, name="cl1")
    Appliance.objects.filter(hostname__in=["esa1.example.com", "esa2.example.com"]).update(cluster=cluster)
    admin.post(url(esa1, "cluster_mode"), {"mode": "machine", "machine": "esa1.example.com"})
    admin.post(url(esa1, "sl_enable"), {"all_machines": "1"})
    for host in ("esa1.example.com", "esa2.example.com"):
        a = Appliance.objects.get(hostname=host)
        admin.post(url(a, "changes"), {"do": "commit"})
        a.refresh_from_db()
        assert a.licensing_mode == "smart"

"""Portal pages: navigation, forms, roles, CSV exports."""

import pytest
from django.urls import reverse

from cssm_portal import services
from cssm_portal.models import (
    AccountAccess,
    CssmRole,
    LicensePool,
    NotificationPreference,
    ProductInstance,
    RegistrationToken,
    SmartAccount,
    VirtualAccount,
)
from cssm_portal.tests.conftest import tag
from licensing_core import codes

pytestmark = pytest.mark.django_db


def _streamed(response) -> str:
    return b"".join(response.streaming_content).decode()


def url(name, account, *args):
    return reverse(f"cssm:{name}", args=["demo", account.pk, *args])


def test_home_link_from_the_lab_page_leads_to_the_default_inventory(client, login_as, lab, account, va):
    login_as("admin")
    response = client.get(reverse("cssm:home", args=["demo"]) + f"?sa={account.pk}", follow=True)
    body = response.content.decode()
    assert response.redirect_chain[-1][0] == url("general", account, va.pk)
    assert "Cisco Software Central" in body
    assert "Smart Software Licensing" in body
    for label in (
        "Alerts",
        "Inventory",
        "Convert to Smart Licensing",
        "Reports",
        "Preferences",
        "On-Prem Accounts",
        "Activity",
    ):
        assert f">{label}</a>" in body
    for label in ("General", "Licenses", "Product Instances", "Event Log"):
        assert f">{label}</a>" in body
    assert "Virtual Account: <strong>ESA</strong>" in body
    assert "Default Virtual Account:</dt><dd>Yes" in body


def test_smart_account_chooser_with_several_accounts(client, login_as, lab, account):
    user = login_as("admin")
    other = SmartAccount.objects.create(lab=lab, name="Other Corp", domain="other.test")
    VirtualAccount.objects.create(smart_account=other, name="DEFAULT", is_default=True)
    AccountAccess.objects.create(user=user, smart_account=other, role=CssmRole.SA_ADMIN)
    body = client.get(reverse("cssm:home", args=["demo"])).content.decode()
    assert "Example Corp" in body
    assert "Other Corp" in body
    page = client.get(url("alerts", account)).content.decode()
    assert "sa-chooser" in page


def test_token_dialog_shows_errors_beside_the_field(client, login_as, account, va):
    login_as("va-user")
    response = client.post(
        url("token_new", account, va.pk), {"expire_days": "400", "max_uses": "0"}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 422
    assert "Expire After must be between 1 - 365 days." in body
    assert "Max. Number of Uses must be 1 or more." in body
    assert not RegistrationToken.objects.exists()


def test_token_dialog_creates_a_token_and_the_table_shows_it(client, login_as, account, va):
    login_as("va-user")
    response = client.post(
        url("token_new", account, va.pk),
        {"expire_days": "365", "max_uses": "100", "description": "<b>gw</b>"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    token = RegistrationToken.objects.get()
    assert token.value in body
    assert "data-copy-target" in body
    page = client.get(url("general", account, va.pk)).content.decode()
    assert codes.token_display(token.value) in page
    assert "(in 365 days)" in page
    assert "0 of 100" in page
    assert "&lt;b&gt;gw&lt;/b&gt;" in page
    assert token.created_by == "va-user"
    download = client.get(url("token_download", account, va.pk, token.pk))
    assert download.content.decode().replace("\n", "") == token.value


@pytest.mark.parametrize("username", ["sa-viewer", "va-viewer"])
def test_viewers_are_read_only(client, login_as, account, va, username):
    login_as(username)
    assert client.get(url("general", account, va.pk)).status_code == 200
    response = client.post(url("token_new", account, va.pk), {"expire_days": "30"})
    assert response.status_code == 403
    assert "can view Virtual Account" in response.content.decode()
    assert not RegistrationToken.objects.exists()


def test_va_roles_see_only_their_virtual_account(client, login_as, account):
    login_as("va-admin")
    sma = VirtualAccount.objects.get(smart_account=account, name="SMA")
    assert client.get(url("general", account, sma.pk)).status_code == 404
    assert client.get(url("licenses", account, sma.pk)).status_code == 404


def test_users_outside_the_account_get_404(client, lab, account, va, django_user_model):
    from licensing_core.models import LabMembership

    outsider = django_user_model.objects.create_user("outsider")
    LabMembership.objects.create(lab=lab, user=outsider)
    client.force_login(outsider)
    assert client.get(url("general", account, va.pk)).status_code == 404
    assert client.get(url("alerts", account)).status_code == 404


def test_only_sa_admins_manage_virtual_accounts(client, login_as, account):
    login_as("sa-user")
    response = client.post(url("virtual_accounts", account), {"name": "New"})
    assert response.status_code == 403
    login_as("sa-admin")
    response = client.post(url("virtual_accounts", account), {"name": "New"})
    assert response.status_code == 302
    assert VirtualAccount.objects.filter(name="New").exists()


def test_licenses_tab_shows_balances_shortages_and_exports_csv(client, login_as, account, va, agent, token):
    login_as("admin")
    agent.register(token.value)
    agent.send("authorize", {"usage": [{"tag": tag("VOF"), "count": 3}]})
    body = client.get(url("licenses", account, va.pk)).content.decode()
    assert "Email Security Appliance Outbreak Filters" in body
    assert "Shortage" in body
    csv = _streamed(client.get(url("licenses_csv", account, va.pk)))
    assert csv.splitlines()[0] == "License,SKU,Billing,Purchased,In Use,Balance,Expiration"
    assert "Email Security Appliance Outbreak Filters,ESA-OF-LIC=,Prepaid,1,3,-2,Never (Perpetual)" in csv
    tx = client.get(url("licenses", account, va.pk) + "?tx=1").content.decode()
    assert "Order" in tx or "Manual" in tx


def test_license_transfer_dialog(client, login_as, account, va):
    login_as("admin")
    pool = LicensePool.objects.get(virtual_account=va, tag=tag("sophos"))
    lab_va = VirtualAccount.objects.get(smart_account=account, name="Lab")
    response = client.post(url("license_transfer", account, va.pk, pool.pk), {"target": lab_va.pk, "quantity": 999})
    assert "can be transferred" in response.content.decode()
    response = client.post(url("license_transfer", account, va.pk, pool.pk), {"target": lab_va.pk, "quantity": 2})
    assert response.status_code == 302
    assert LicensePool.objects.get(virtual_account=lab_va, tag=tag("sophos")).purchased == 2


def test_reservation_wizard_refuses_bad_codes_and_too_many(client, login_as, account, va):
    login_as("admin")
    response = client.post(url("reserve", account, va.pk), {"step": "request", "request_code": "CB-ZC395:X-1"})
    assert "The request code" in response.content.decode()
    rc = codes.request_code_generate(pid="C395", serial="WIZ1")
    response = client.post(url("reserve", account, va.pk), {"step": "request", "request_code": rc})
    assert "Select Licenses" in response.content.decode()
    response = client.post(
        url("reserve", account, va.pk),
        {"step": "select", "request_code": rc, "reservation_type": "SPECIFIC", f"qty_{tag('VOF')}": "5"},
    )
    assert "Only 1 available." in response.content.decode()
    response = client.post(
        url("reserve", account, va.pk),
        {"step": "review", "request_code": rc, "reservation_type": "SPECIFIC", f"qty_{tag('VOF')}": "1"},
    )
    assert "&lt;specificPLR&gt;" in response.content.decode()
    assert ProductInstance.objects.filter(serial="WIZ1").exists()


def test_reservation_wizard_accepts_an_uploaded_request_code(client, login_as, account, va):
    from django.core.files.uploadedfile import SimpleUploadedFile

    login_as("admin")
    rc = codes.request_code_generate(pid="C395", serial="UPL1")
    response = client.post(
        url("reserve", account, va.pk),
        {"step": "request", "request_file": SimpleUploadedFile("code.txt", rc.encode())},
    )
    assert rc in response.content.decode()


def test_event_log_filter_and_csv(client, login_as, account, va, now):
    login_as("admin")
    services.token_create(
        va=va, actor="admin", description="findme", expire_days=3, max_uses=None, export_controlled=False, now=now
    )
    body = client.get(url("va_events", account, va.pk) + "?q=findme").content.decode()
    assert "findme" in body
    csv = _streamed(client.get(url("va_events_csv", account, va.pk)))
    assert csv.splitlines()[0] == "Message,Time,User"
    assert "findme" in csv


def test_alerts_page_and_actions(client, login_as, account):
    login_as("admin")
    body = client.get(url("alerts", account)).content.decode()
    assert "Licenses Expiring" in body
    assert "Available Actions" in body
    from cssm_portal.models import CssmAlert

    alert = CssmAlert.objects.get(alert_type="Licenses Expiring")
    csv = _streamed(client.post(url("alerts_action", account), {"action": "csv", "alert": [alert.pk]}))
    assert csv.splitlines()[0] == "Sev,Alert Type,Alert Date,Message,Virtual Account"
    client.post(url("alerts_action", account), {"action": "dismiss", "alert": [alert.pk]})
    alert.refresh_from_db()
    assert alert.dismissed_at is not None


def test_viewers_cannot_dismiss_alerts(client, login_as, account):
    login_as("sa-viewer")
    client.get(url("alerts", account))
    from cssm_portal.models import CssmAlert

    alert = CssmAlert.objects.first()
    response = client.post(url("alerts_action", account), {"action": "dismiss", "alert": [alert.pk]})
    assert response.status_code == 403


def test_preferences_refuse_a_foreign_address_beside_the_field(client, login_as, account):
    login_as("admin")
    response = client.post(url("preferences", account), {"daily_summary": "on", "email": "me@gmail.com"})
    assert response.status_code == 422
    assert "within the Smart Account&#x27;s domain (example.com)" in response.content.decode()
    response = client.post(
        url("preferences", account),
        {
            "daily_summary": "on",
            "email": "ops@example.com",
            "alert_events": ["Licenses Expiring"],
            "expiring_days": ["30", "7"],
        },
    )
    assert response.status_code == 302
    assert NotificationPreference.objects.get().expiring_days == [30, 7]


def test_reports_activity_convert_on_prem(client, login_as, account):
    login_as("admin")
    body = client.get(url("reports", account) + "?report=licenses").content.decode()
    assert "<svg" in body
    assert "line-in-use" in body
    csv = _streamed(client.get(url("reports", account) + "?report=licenses&format=csv"))
    assert csv.startswith("Virtual Account,License")
    csv = _streamed(client.get(url("reports", account) + "?report=instances&format=csv"))
    assert csv.startswith("Name,Product Type")
    body = client.get(url("activity", account)).content.decode()
    for col in ("Transaction Date", "License SKU", "License Expiration", "Source"):
        assert col in body
    assert "(Term)" in body
    assert client.get(url("activity", account) + "?format=csv").status_code == 200
    assert "Smart Account" in client.get(url("activity_events", account)).content.decode()
    response = client.post(
        url("convert", account),
        {
            "pak": "PAK12345",
            "license_tag": tag("ims"),
            "quantity": 2,
            "target": VirtualAccount.objects.get(name="ESA").pk,
        },
    )
    assert response.status_code == 302
    assert "PAK Migration" in client.get(url("convert", account)).content.decode()
    assert "satellite.example.com" in client.get(url("on_prem", account)).content.decode()


def test_smart_account_request_pages(client, login_as, lab):
    user = login_as("guest")
    response = client.post(reverse("cssm:sa_request", args=["demo"]), {"name": "Bad<name>", "domain": "example.org"})
    assert "Account Name may have" in response.content.decode()
    client.post(reverse("cssm:sa_request", args=["demo"]), {"name": "Guest Co", "domain": "guest.test"})
    from cssm_portal.models import SmartAccountRequest

    req = SmartAccountRequest.objects.get(requested_by=user)
    assert req.status == "pending_approval"  # guest@example.com edited the domain
    assert (
        client.post(reverse("cssm:sa_request_decide", args=["demo", req.pk]), {"decision": "approve"}).status_code
        == 403
    )
    login_as("admin")
    client.post(reverse("cssm:sa_request_decide", args=["demo", req.pk]), {"decision": "approve"})
    client.force_login(user)
    response = client.post(reverse("cssm:sa_request_complete", args=["demo", req.pk]))
    assert response.status_code == 302
    assert SmartAccount.objects.filter(domain="guest.test").exists()

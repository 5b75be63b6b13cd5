"""The Smart Software Licensing Agreement: publish (lab), banner, Accept (SA Administrator),
the two agreement alerts and the Event Log row (§5.8, §5.9, §5.12)."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cssm_portal import agreements, services
from cssm_portal.models import AgreementAcceptance, CssmAlert, SmartAccount, SmartAccountRequest, VirtualAccount
from cssm_portal.services import ServiceError
from licensing_core.alerts import CssmAlertType as T
from licensing_core.clock import clock_advance, lab_now
from licensing_core.models import Event, EventSide

pytestmark = pytest.mark.django_db


def _open(sa, alert_type):
    return list(CssmAlert.objects.filter(smart_account=sa, alert_type=alert_type, cleared_at__isnull=True))


def _url(name, account, *args):
    return reverse(f"cssm:{name}", args=["demo", account.pk, *args])


@pytest.fixture
def other(lab):
    sa = SmartAccount.objects.create(lab=lab, name="Acme", domain="acme.example")
    VirtualAccount.objects.create(smart_account=sa, name="DEFAULT", is_default=True)
    return sa


def test_publishing_asks_every_smart_account_to_accept(lab, now, account, other):
    agreement = agreements.agreement_publish(lab=lab, summary="New export terms.", text="", actor="admin", now=now)
    assert agreement.version == 1
    assert agreement.text == agreements.BASE_TEXT
    for sa in (account, other):
        sa.refresh_from_db()
        assert sa.pending_agreement == agreement
        [updated] = _open(sa, T.UPDATED_SMART_LICENSE_AGREEMENT)
        [pending] = _open(sa, T.SMART_LICENSING_AGREEMENT_PENDING)
        assert (updated.severity, pending.severity) == ("Informational", "Informational")
        assert updated.virtual_account is None
        assert pending.virtual_account is None
        assert "updated to version 1" in updated.message
        assert "New export terms." in updated.message
        assert f'Smart Account "{sa.name}" has not accepted version 1' in pending.message
    assert Event.objects.filter(side=EventSide.LAB, kind="lab.agreement.published", actor="admin").count() == 1


def test_a_newer_version_replaces_the_alerts_of_the_older_one(lab, now, account):
    agreements.agreement_publish(lab=lab, summary="One.", text="First text.", actor="admin", now=now)
    second = agreements.agreement_publish(lab=lab, summary="Two.", text="", actor="admin", now=now)
    assert second.version == 2
    assert second.text == "First text."  # empty text keeps the current one
    [pending] = _open(account, T.SMART_LICENSING_AGREEMENT_PENDING)
    [updated] = _open(account, T.UPDATED_SMART_LICENSE_AGREEMENT)
    assert "version 2" in pending.message
    assert "version 2" in updated.message
    assert CssmAlert.objects.filter(smart_account=account, cleared_at__isnull=False).count() == 2


@pytest.mark.parametrize(("summary", "field"), [("", "summary"), ("x" * 201, "summary")])
def test_publishing_needs_a_summary(lab, now, summary, field):
    with pytest.raises(ServiceError) as err:
        agreements.agreement_publish(lab=lab, summary=summary, text="", actor="admin", now=now)
    assert err.value.field == field


def test_the_banner_offers_accept_to_the_administrator_and_accepting_clears_both_alerts(
    client, login_as, lab, now, account
):
    agreement = agreements.agreement_publish(lab=lab, summary="New terms.", text="", actor="admin", now=now)
    login_as("sa-admin")
    page = client.get(_url("alerts", account)).content.decode()
    assert "Smart Licensing Agreement Pending." in page
    assert f'name="agreement" value="{agreement.pk}"' in page
    clock_advance(lab=lab, by=timedelta(hours=2))
    response = client.post(_url("agreement_accept", account), {"agreement": agreement.pk}, follow=True)
    body = response.content.decode()
    assert "You accepted version 1 of the Smart Software Licensing Agreement." in body
    assert "Smart Licensing Agreement Pending." not in body
    account.refresh_from_db()
    assert account.pending_agreement is None
    acceptance = AgreementAcceptance.objects.get(smart_account=account)
    assert (acceptance.agreement, acceptance.accepted_by, acceptance.accepted_at) == (
        agreement,
        "sa-admin",
        lab_now(lab),
    )
    assert not _open(account, T.SMART_LICENSING_AGREEMENT_PENDING)
    assert not _open(account, T.UPDATED_SMART_LICENSE_AGREEMENT)
    # The Smart Account Event Log records the acceptance (§5.9).
    events = client.get(_url("activity_events", account)).content.decode()
    assert "Smart Software Licensing Agreement version 1 was accepted for Smart Account" in events
    # A second Accept says there is nothing left to accept.
    again = client.post(_url("agreement_accept", account), {"agreement": agreement.pk}, follow=True)
    assert "has already accepted the current Smart Software Licensing Agreement" in again.content.decode()
    assert AgreementAcceptance.objects.count() == 1


def test_accepting_a_version_that_was_replaced_meanwhile_is_refused(client, login_as, lab, now, account):
    first = agreements.agreement_publish(lab=lab, summary="One.", text="", actor="admin", now=now)
    agreements.agreement_publish(lab=lab, summary="Two.", text="", actor="admin", now=now)
    login_as("admin")
    body = client.post(_url("agreement_accept", account), {"agreement": first.pk}, follow=True).content.decode()
    assert "Version 2 of the Smart Software Licensing Agreement has been published since" in body
    account.refresh_from_db()
    assert account.pending_agreement.version == 2
    assert not AgreementAcceptance.objects.exists()


@pytest.mark.parametrize("username", ["sa-user", "sa-viewer", "va-admin"])
def test_only_a_smart_account_administrator_accepts(client, login_as, lab, now, account, username):
    agreement = agreements.agreement_publish(lab=lab, summary="New terms.", text="", actor="admin", now=now)
    login_as(username)
    page = client.get(_url("agreement", account)).content.decode()
    assert "A Smart Account Administrator must accept it." in page
    assert 'value="Accept"' not in page
    assert ">Accept</button>" not in page
    response = client.post(_url("agreement_accept", account), {"agreement": agreement.pk})
    assert response.status_code == 403
    assert "Only a Smart Account Administrator can do this." in response.content.decode()
    account.refresh_from_db()
    assert account.pending_agreement == agreement


def test_while_pending_everything_keeps_working(client, login_as, lab, now, account, va):
    """No source says CSSM blocks anything before acceptance: tokens can still be created."""
    agreements.agreement_publish(lab=lab, summary="New terms.", text="", actor="admin", now=now)
    login_as("sa-admin")
    response = client.post(_url("token_new", account, va.pk), {"description": "x", "expire_days": 30})
    assert response.status_code == 200
    assert va.tokens.count() == 1


def test_the_banner_costs_no_query(client, login_as, lab, now, account, django_assert_num_queries):
    login_as("admin")
    url = _url("alerts", account)
    client.get(url)
    with CaptureQueriesContext(connection) as before:
        client.get(url)
    agreements.agreement_publish(lab=lab, summary="New terms.", text="", actor="admin", now=now)
    # The two new alerts are rows of the page; its query count stays the same.
    with django_assert_num_queries(len(before.captured_queries)):
        body = client.get(url).content.decode()
    assert "Smart Licensing Agreement Pending." in body


def test_a_new_smart_account_starts_with_the_agreement_pending(lab, now, account):
    user = get_user_model().objects.create_user("creator", "creator@newco.example", "x")
    req = services.smart_account_request(lab=lab, user=user, name="NewCo", domain="newco.example", now=now)
    assert req.status == "pending_setup"
    sa = services.smart_account_complete(req=SmartAccountRequest.objects.get(pk=req.pk), user=user, now=now)
    sa.refresh_from_db()
    assert sa.pending_agreement.version == 1
    assert sa.pending_agreement.text == agreements.BASE_TEXT
    [pending] = _open(sa, T.SMART_LICENSING_AGREEMENT_PENDING)
    assert "NewCo" in pending.message
    assert not _open(sa, T.UPDATED_SMART_LICENSE_AGREEMENT)
    # Accounts that existed before are not asked to accept the first version.
    account.refresh_from_db()
    assert account.pending_agreement is None
    # The creator (its Smart Account Administrator) accepts it.
    agreements.agreement_accept(smart_account=sa, agreement_id=sa.pending_agreement_id, actor="creator", now=now)
    assert not _open(sa, T.SMART_LICENSING_AGREEMENT_PENDING)


def test_a_smart_account_administrator_can_dismiss_the_account_level_alerts(client, login_as, lab, now, account):
    agreements.agreement_publish(lab=lab, summary="New terms.", text="", actor="admin", now=now)
    [updated] = _open(account, T.UPDATED_SMART_LICENSE_AGREEMENT)
    login_as("va-admin")  # an edit role on one Virtual Account only: not the account's own alerts
    client.post(_url("alerts_action", account), {"action": "dismiss", "alert": updated.pk})
    updated.refresh_from_db()
    assert updated.dismissed_at is None
    login_as("sa-admin")
    body = client.post(
        _url("alerts_action", account), {"action": "dismiss", "alert": updated.pk}, follow=True
    ).content.decode()
    assert "1 alert(s) dismissed." in body
    updated.refresh_from_db()
    assert updated.dismissed_at == now


# --- the lab action --------------------------------------------------------------------------------


def test_the_lab_manager_publishes_from_the_lab_page(client, login_as, lab, account):
    login_as("admin")
    page = client.get(reverse("labs:detail", args=["demo"])).content.decode()
    assert "Publish an updated Smart Software Licensing Agreement" in page
    url = reverse("labs:agreement_publish", args=["demo"])
    body = client.post(url, {"summary": "", "text": ""}, follow=True).content.decode()
    assert "What changed" in body
    assert "This field is required." in body
    body = client.post(url, {"summary": "Data retention.", "text": "Full text v1."}, follow=True).content.decode()
    assert "Smart Software Licensing Agreement version 1 published" in body
    account.refresh_from_db()
    assert account.pending_agreement.text == "Full text v1."


def test_a_member_who_is_not_a_manager_cannot_publish(client, login_as, lab, account):
    login_as("sa-admin")
    response = client.post(reverse("labs:agreement_publish", args=["demo"]), {"summary": "x"})
    assert response.status_code == 403
    account.refresh_from_db()
    assert account.pending_agreement is None


def test_an_exported_lab_keeps_its_agreements_and_acceptances(lab, now, account, other):
    from labs.transfer import lab_export_json, lab_import

    agreements.agreement_publish(lab=lab, summary="One.", text="Text one.", actor="admin", now=now)
    second = agreements.agreement_publish(lab=lab, summary="Two.", text="", actor="admin", now=now)
    agreements.agreement_accept(smart_account=account, agreement_id=second.pk, actor="sa-admin", now=now)
    copy = lab_import(document=json.loads(lab_export_json(lab=lab)), slug="agreement-copy")
    mine = SmartAccount.objects.get(lab=copy, domain="example.com")
    theirs = SmartAccount.objects.get(lab=copy, domain="acme.example")
    assert mine.pending_agreement is None
    assert theirs.pending_agreement.lab == copy
    assert theirs.pending_agreement.version == 2
    accepted = AgreementAcceptance.objects.get(smart_account=mine)
    assert (accepted.agreement.lab, accepted.agreement.version, accepted.accepted_by) == (copy, 2, "sa-admin")
    assert _open(theirs, T.SMART_LICENSING_AGREEMENT_PENDING)[0].message.startswith('Smart Account "Acme"')

"""Nothing lost, no one let in, under concurrent requests (PostgreSQL only)."""

import json
import secrets

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Sum
from django.test import Client
from django.urls import reverse

from cssm_portal import services as cssm_services
from cssm_portal.models import LicensePool, LicenseUsage, ProductInstance, RegistrationToken, SmartAccount
from gateway_ui import services as gateway_services
from gateway_ui.clock import appliance_now
from gateway_ui.models import Appliance, TransportMode
from licensing_core import catalogue, codes, pki
from licensing_core.clock import clock_freeze, lab_now
from licensing_core.models import Event
from tests.concurrency.conftest import run_concurrently

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def lab(demo_lab):
    clock_freeze(lab=demo_lab)
    return demo_lab


@pytest.fixture
def account(lab):
    return SmartAccount.objects.get(lab=lab, domain="example.com")


def _client(username):
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


# --- 200 registrations, one token good for 50 -----------------------------------------------------


def test_200_concurrent_registrations_on_a_50_use_token(lab, account):
    va = account.virtual_accounts.get(name="ESA")
    token = cssm_services.token_create(
        va=va, actor="admin", description="race", expire_days=30, max_uses=50, export_controlled=False,
        now=lab_now(lab),
    )  # fmt: skip
    key = pki.make_device_key()
    now = lab_now(lab).isoformat()

    def envelope(i):
        serial = f"RACE{i:04d}"
        udi = catalogue.make_udi("C395", serial)
        body = {
            "token": token.value,
            "csr": pki.make_csr(key_pem=key, common_name=f"r{i}.example.com", udi=udi).decode(),
            "hostname": f"r{i}.example.com",
            "product": "ESA",
            "pid": "C395",
            "serial": serial,
            "force": False,
        }
        env = {"protocol": "smart-agent/1", "lab": lab.slug, "type": "register", "udi": udi, "sent_at": now,
               "nonce": secrets.token_hex(16), "body": body}  # fmt: skip
        return json.dumps(env)

    bodies = [envelope(i) for i in range(200)]

    def job(body):
        def post():
            r = Client().post("/licservice/license", data=body, content_type="application/json")
            return r.status_code, r.json()

        return post

    results = run_concurrently([job(b) for b in bodies])
    statuses = [s for s, _ in results]
    assert all(s < 500 for s in statuses), [r for r in results if r[0] >= 500][:3]
    assert statuses.count(200) == 50
    refusals = [data for s, data in results if s != 200]
    assert len(refusals) == 150
    assert {(d["code"], d["message"]) for d in refusals} == {
        ("token_used_up", "The registration token has reached its maximum number of uses.")
    }
    assert ProductInstance.objects.filter(lab=lab, serial__startswith="RACE").count() == 50
    assert RegistrationToken.objects.get(pk=token.pk).uses == 50
    assert Event.objects.filter(lab=lab, kind="cssm.instance.registered").count() == 50


# --- reservations and transfers against one pool ---------------------------------------------------


def _balances(tag, vas):
    out = {}
    for va in vas:
        pool = LicensePool.objects.filter(virtual_account=va, tag=tag).first()
        purchased = pool.purchased if pool else 0
        in_use = LicenseUsage.objects.filter(instance__virtual_account=va, tag=tag).aggregate(n=Sum("count"))["n"]
        out[va.name] = (purchased, in_use or 0)
    return out


def test_50_concurrent_reservations_and_transfers_on_one_pool(lab, account):
    esa, lab_va = account.virtual_accounts.get(name="ESA"), account.virtual_accounts.get(name="Lab")
    SmartAccount.objects.filter(pk=account.pk).update(reservation_allowed=True)
    tag = next(lic.entitlement_tag for lic in catalogue.ESA_LICENSES if lic.code == "imh")
    LicensePool.objects.filter(virtual_account=esa, tag=tag).update(purchased=20)
    LicensePool.objects.filter(virtual_account=lab_va, tag=tag).update(purchased=5)
    before = _balances(tag, [esa, lab_va])
    total = sum(p for p, _ in before.values())
    esa_pool = LicensePool.objects.get(virtual_account=esa, tag=tag)
    lab_pool = LicensePool.objects.get(virtual_account=lab_va, tag=tag)

    def reserve(i):
        code = codes.request_code_generate(pid="C395", serial=f"RSV{i:03d}")
        client = _client("sa-user")

        def go():
            r = client.post(
                reverse("cssm:reserve", args=[lab.slug, account.pk, esa.pk]),
                {"step": "review", "request_code": code, "reservation_type": "SPECIFIC", f"qty_{tag}": "2"},
            )
            return ("reserve", r.status_code, r.content.decode())

        return go

    def transfer(i, source, pool, target):
        client = _client("admin")

        def go():
            r = client.post(
                reverse("cssm:license_transfer", args=[lab.slug, account.pk, source.pk, pool.pk]),
                {"target": target.pk, "quantity": "3"},
                follow=True,
            )
            return ("transfer", r.status_code, r.content.decode())

        return go

    jobs = []
    for i in range(50):
        if i % 2 == 0:
            jobs.append(reserve(i))
        elif i % 4 == 1:
            jobs.append(transfer(i, esa, esa_pool, lab_va))
        else:
            jobs.append(transfer(i, lab_va, lab_pool, esa))
    results = run_concurrently(jobs)

    assert all(status < 500 for _, status, _ in results), [r[:2] for r in results if r[1] >= 500]
    after = _balances(tag, [esa, lab_va])
    # Totals conserved: transfers move licences, never create or destroy them.
    assert sum(p for p, _ in after.values()) == total
    # Balances never negative.
    for name, (purchased, in_use) in after.items():
        assert purchased >= 0, name
        assert purchased - in_use >= 0, (name, purchased, in_use)
    # Every reservation either holds exactly its two licences or was refused with a reason.
    reserved = ProductInstance.objects.filter(lab=lab, serial__startswith="RSV")
    assert after["ESA"][1] == 2 * reserved.count()
    refused = [body for kind, _, body in results if kind == "reserve" and "&lt;specificPLR&gt;" not in body]
    assert reserved.count() + len(refused) == 25
    for body in refused:
        assert "available" in body
    # Transfers: every one either moved 3 and said so, or was refused with the balance.
    for kind, _, body in results:
        if kind == "transfer":
            assert "transferred to" in body or "can be transferred (the balance)" in body


# --- two administrators committing the same appliance -------------------------------------------------


def test_two_administrators_commit_the_same_appliance_at_once(lab):
    esa1 = Appliance.objects.get(lab=lab, hostname="esa1.example.com")
    now = appliance_now(esa1)
    gateway_services.sl_enable(appliance=esa1, user=None, now=now)
    gateway_services.changes_commit(appliance=esa1, user=None, role="administrator", now=now)
    esa1.refresh_from_db()
    gateway_services.transport_stage(
        appliance=esa1, mode=TransportMode.GATEWAY, url="https://tg.example.com/x", user=None, now=now
    )
    gateway_services.proxy_stage(
        appliance=esa1, host="proxy.example.com", port=3128, username="u", password="p", user=None, now=now
    )
    url = reverse("gateway:changes", args=[lab.slug, esa1.hostname])
    clients = [_client("admin"), _client("operator")]

    def commit(client):
        return lambda: client.post(url, {"do": "commit", "comment": "race"}, follow=True).content.decode()

    for _ in range(5):
        pages = run_concurrently([commit(c) for c in clients], workers=2)
        won = [p for p in pages if "Your changes have been committed." in p]
        lost = [p for p in pages if '<li class="error" role="alert">No Changes Pending</li>' in p]
        assert len(won) == 1, "exactly one commit wins"
        assert len(lost) == 1, "the other is told there is nothing left to commit"
        esa1.refresh_from_db()
        # Applied whole: both staged changes took effect, and none is left staged.
        assert (esa1.transport_mode, esa1.transport_url) == (TransportMode.GATEWAY, "https://tg.example.com/x")
        assert (esa1.proxy_host, esa1.proxy_port) == ("proxy.example.com", 3128)
        assert not esa1.staged_changes.exists()
        # Stage again (back to Direct) for the next round.
        now = appliance_now(esa1)
        gateway_services.transport_stage(appliance=esa1, mode=TransportMode.DIRECT, url="", user=None, now=now)
        gateway_services.changes_commit(appliance=esa1, user=None, role="administrator", now=now)
        esa1.refresh_from_db()
        gateway_services.transport_stage(
            appliance=esa1, mode=TransportMode.GATEWAY, url="https://tg.example.com/x", user=None, now=now
        )
        gateway_services.proxy_stage(
            appliance=esa1, host="proxy.example.com", port=3128, username="u", password="p", user=None, now=now
        )
    commits = Event.objects.filter(appliance_id=esa1.pk, kind="changes.committed", actor__in=["admin", "operator"])
    assert commits.count() == 5

"""Licences in use stay exact when renewals (single and batched) race on one
pool, its verdict flipping back and forth (PostgreSQL only)."""

import json

import pytest
from django.test import Client

from cssm_portal import services
from cssm_portal.models import LicensePool, LicenseUsage, SmartAccount
from cssm_portal.tests.conftest import Agent, tag
from cssm_portal.tests.test_in_use import assert_pools_consistent
from licensing_core.clock import clock_freeze, lab_now
from tests.concurrency.conftest import run_concurrently

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_racing_renewals_keep_in_use_and_verdicts_exact(demo_lab):
    lab = clock_freeze(lab=demo_lab)
    account = SmartAccount.objects.get(lab=lab, domain="example.com")
    va = account.virtual_accounts.get(name="ESA")
    token = services.token_create(
        va=va, actor="t", description="", expire_days=30, max_uses=None, export_controlled=False, now=lab_now(lab)
    )
    LicensePool.objects.filter(virtual_account=va, tag=tag("VOF")).update(purchased=15)
    agents = [Agent(Client(), lab) for _ in range(30)]
    for agent in agents:
        assert agent.register(token.value)[0] == 200

    def single(agent, count):
        def go():
            envelope = agent.envelope("authorize", {"usage": [{"tag": tag("VOF"), "count": count}]})
            r = Client().post("/licservice/license", data=json.dumps(envelope), content_type="application/json")
            return r.status_code

        return go

    def batch(group, count):
        def go():
            messages = [a.envelope("authorize", {"usage": [{"tag": tag("VOF"), "count": count}]}) for a in group]
            body = {"protocol": "smart-agent/1", "lab": lab.slug, "messages": messages}
            r = Client().post("/licservice/license/batch", data=json.dumps(body), content_type="application/json")
            return r.status_code

        return go

    jobs = []
    for round_ in range(3):
        # 0, 30 or 15 in use against 15 purchased: the verdict changes every round.
        for i, agent in enumerate(agents[:20]):
            jobs.append(single(agent, (round_ + i) % 2))
        jobs.append(batch(agents[20:], round_ % 2))
    statuses = run_concurrently(jobs, workers=12)
    assert set(statuses) == {200}
    assert_pools_consistent(account)


def test_renewals_of_one_instance_at_once_take_turns(demo_lab):
    """The same instance renewing many times at once (a retry racing its original):
    every renewal is answered, and the new usage row is written once."""
    lab = clock_freeze(lab=demo_lab)
    account = SmartAccount.objects.get(lab=lab, domain="example.com")
    va = account.virtual_accounts.get(name="ESA")
    token = services.token_create(
        va=va, actor="t", description="", expire_days=30, max_uses=None, export_controlled=False, now=lab_now(lab)
    )
    agent = Agent(Client(), lab)
    assert agent.register(token.value)[0] == 200

    def renew():
        envelope = agent.envelope("authorize", {"usage": [{"tag": tag("VOF"), "count": 1}]})
        return Client().post("/licservice/license", data=json.dumps(envelope), content_type="application/json")

    responses = run_concurrently([renew for _ in range(16)], workers=8)
    assert {r.status_code for r in responses} == {200}
    assert LicenseUsage.objects.filter(instance__udi=agent.udi, tag=tag("VOF")).count() == 1
    assert_pools_consistent(account)

"""Markup typed into a free-text field is shown as text, never run: every free-text field a user
or a Smart Agent can fill, rendered on the pages that show it."""

import pytest
from django.urls import reverse

from cssm_portal.models import ProductInstance, VirtualAccount
from tests.fuzz.strategies import SCRIPT

pytestmark = pytest.mark.django_db
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _assert_escaped(body: str):
    assert SCRIPT not in body
    assert ESCAPED in body


@pytest.fixture
def admin(client, login_as):
    login_as("admin")
    return client


@pytest.fixture
def esa(demo_lab):
    return VirtualAccount.objects.get(smart_account__lab=demo_lab, name="ESA")


def _sa(esa):
    return [esa.smart_account.lab.slug, esa.smart_account_id]


def test_token_description(admin, esa):
    admin.post(reverse("cssm:token_new", args=[*_sa(esa), esa.pk]), {"description": SCRIPT, "expire_days": "30"})
    _assert_escaped(admin.get(reverse("cssm:general", args=[*_sa(esa), esa.pk])).content.decode())
    _assert_escaped(admin.get(reverse("cssm:va_events", args=[*_sa(esa), esa.pk])).content.decode())


def test_virtual_account_name_and_description(admin, esa):
    url = reverse("cssm:virtual_accounts", args=_sa(esa))
    admin.post(url, {"name": SCRIPT, "description": SCRIPT})
    assert VirtualAccount.objects.filter(name=SCRIPT).exists()
    _assert_escaped(admin.get(url).content.decode())
    _assert_escaped(admin.get(reverse("cssm:activity_events", args=_sa(esa))).content.decode())


def test_smart_account_request_name(admin, demo_lab):
    """Markup is not a valid account name: refused, and the form shows it back escaped."""
    r = admin.post(reverse("cssm:sa_request", args=[demo_lab.slug]), {"name": SCRIPT, "domain": "example.net"})
    body = r.content.decode()
    assert "The Account Name may have up to 50 characters" in body
    _assert_escaped(body)


def test_product_instance_hostname_sent_by_an_agent(admin, client, esa, demo_lab):
    from cssm_portal.services import token_create
    from cssm_portal.tests.conftest import Agent
    from licensing_core.clock import clock_freeze, lab_now

    clock_freeze(lab=demo_lab)
    token = token_create(
        va=esa, actor="t", description="", expire_days=3, max_uses=None, export_controlled=False, now=lab_now(demo_lab)
    )
    agent = Agent(client, demo_lab, hostname=SCRIPT)
    assert agent.register(token.value)[0] == 200
    inst = ProductInstance.objects.get(name=SCRIPT)
    _assert_escaped(admin.get(reverse("cssm:instances", args=[*_sa(esa), esa.pk])).content.decode())
    _assert_escaped(admin.get(reverse("cssm:instance", args=[*_sa(esa), esa.pk, inst.piid])).content.decode())


def test_commit_comment_in_the_appliance_log(admin, demo_lab):
    from gateway_ui.models import Appliance
    from tests.access.world import enable, stage_transport

    esa1 = enable(Appliance.objects.get(lab=demo_lab, hostname="esa1.example.com"))
    stage_transport(esa1)
    args = [demo_lab.slug, esa1.hostname]
    admin.post(reverse("gateway:changes", args=args), {"do": "commit", "comment": SCRIPT})
    _assert_escaped(admin.get(reverse("gateway:smartlicense_log", args=args)).content.decode())


def test_rejected_token_text_on_the_register_page(admin, demo_lab):
    from gateway_ui.models import Appliance
    from tests.access.world import enable

    esa1 = enable(Appliance.objects.get(lab=demo_lab, hostname="esa1.example.com"))
    page = admin.post(
        reverse("gateway:sl_register", args=[demo_lab.slug, esa1.hostname]), {"token": "x" * 2001 + SCRIPT}
    )
    assert SCRIPT not in page.content.decode()


def test_proxy_user_name_and_transport_url(admin, demo_lab):
    from gateway_ui.models import Appliance
    from tests.access.world import enable

    esa1 = enable(Appliance.objects.get(lab=demo_lab, hostname="esa1.example.com"))
    args = [demo_lab.slug, esa1.hostname]
    r = admin.post(reverse("gateway:sl_transport", args=args), {"mode": "gateway", "url": "https://x/" + SCRIPT})
    assert SCRIPT not in r.content.decode()
    r = admin.post(
        reverse("gateway:service_updates", args=args),
        {"host": "proxy.example.com", "port": "3128", "username": SCRIPT, "password": "p"},
        follow=True,
    )
    assert SCRIPT not in r.content.decode()

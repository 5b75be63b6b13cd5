"""Fixtures for the portal: a lab with a frozen clock and a Smart Agent double."""

import json
import secrets
import uuid
from datetime import timedelta

import pytest

from cssm_portal import services
from cssm_portal.models import LicensePool, ProductInstance, SmartAccount, VirtualAccount
from licensing_core import catalogue, pki
from licensing_core.clock import clock_freeze, lab_now


@pytest.fixture
def lab(demo_lab):
    clock_freeze(lab=demo_lab)
    return demo_lab


@pytest.fixture
def now(lab):
    return lab_now(lab)


@pytest.fixture
def account(lab):
    return SmartAccount.objects.get(lab=lab, domain="example.com")


@pytest.fixture
def va(account):
    return VirtualAccount.objects.get(smart_account=account, name="ESA")


@pytest.fixture
def token(va, now):
    return services.token_create(
        va=va, actor="admin", description="lab", expire_days=30, max_uses=5, export_controlled=False, now=now
    )


class Agent:
    """Builds and posts protocol envelopes like the appliance's Smart Agent."""

    def __init__(self, client, lab, *, pid="C395", serial=None, hostname=None, path="/licservice/license"):
        self.client, self.lab, self.path = client, lab, path
        self.pid = pid
        self.serial = serial or f"TEST{secrets.token_hex(4).upper()}"
        self.udi = catalogue.make_udi(self.pid, self.serial)
        self.hostname = hostname or f"{self.serial.lower()}.example.com"
        self.key = pki.make_device_key()
        self.skew = timedelta(0)

    def envelope(self, kind, body, *, sign=True, nonce=None):
        env = {
            "protocol": "smart-agent/1",
            "lab": self.lab.slug,
            "type": kind,
            "udi": self.udi,
            "sent_at": (lab_now(self.lab) + self.skew).isoformat(),
            "nonce": nonce or secrets.token_hex(16),
            "body": body,
        }
        if sign:
            data = json.dumps(env, sort_keys=True, separators=(",", ":")).encode()
            env["signature"] = pki.sign(key_pem=self.key, data=data)
        return env

    def post(self, env):
        response = self.client.post(self.path, data=json.dumps(env), content_type="application/json")
        return response.status_code, response.json()

    def send(self, kind, body=None, **kw):
        return self.post(self.envelope(kind, body or {}, **kw))

    def register(self, token_value, *, force=False, product="ESA"):
        csr = pki.make_csr(key_pem=self.key, common_name=self.hostname, udi=self.udi).decode()
        body = {
            "token": token_value,
            "csr": csr,
            "hostname": self.hostname,
            "product": product,
            "pid": self.pid,
            "serial": self.serial,
            "software_version": "15.0.0-104",
            "agent_version": "1.3.7",
            "force": force,
        }
        return self.post(self.envelope("register", body, sign=False))


@pytest.fixture
def agent(client, lab):
    return Agent(client, lab)


@pytest.fixture
def make_agent(client, lab):
    def _make(**kw):
        return Agent(client, lab, **kw)

    return _make


def tag(code, product="ESA"):
    return next(lic.entitlement_tag for lic in catalogue.licenses_for(product) if lic.code == code)


@pytest.fixture
def pool(va):
    p, _ = LicensePool.objects.update_or_create(virtual_account=va, tag=tag("VOF"), defaults={"purchased": 2})
    return p


def instances_bulk(*, lab, va, now, serial: str, name: str, numbers) -> list[ProductInstance]:
    """Product instances written directly (no services, no usage), serial and
    name formatted with each of `numbers`: for tests of lists and bulk loads."""
    return ProductInstance.objects.bulk_create(
        ProductInstance(
            lab=lab,
            virtual_account=va,
            piid=uuid.uuid4(),
            udi=f"PID:C395,SN:{serial.format(i)}",
            name=name.format(i),
            product="ESA",
            pid="C395",
            serial=serial.format(i),
            registered_at=now,
            last_contact=now,
        )
        for i in numbers
    )

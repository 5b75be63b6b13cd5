"""Fixtures for the appliance GUI tests."""

import pytest

from gateway_ui.clock import appliance_now
from gateway_ui.models import Appliance


@pytest.fixture
def esa1(demo_lab):
    return Appliance.objects.get(lab=demo_lab, hostname="esa1.example.com")


@pytest.fixture
def cssm(settings, live_server):
    """The appliance's Direct transport reaches this test server's real CSSM endpoint."""
    settings.CSSM_BASE_URL = live_server.url
    return live_server


@pytest.fixture
def make_token(demo_lab):
    """A registration token created through cssm_portal's service."""

    def _make(*, va_name="ESA", max_uses=None, expire_days=30):
        from cssm_portal.models import VirtualAccount
        from cssm_portal.services import token_create
        from licensing_core.clock import lab_now

        va = VirtualAccount.objects.get(smart_account__lab=demo_lab, name=va_name)
        token = token_create(
            va=va,
            actor="admin",
            description="test",
            expire_days=expire_days,
            max_uses=max_uses,
            export_controlled=True,  # as the guide's step 2 says: esa1's PXE Encryption is export-controlled
            now=lab_now(demo_lab),
        )
        return token.value

    return _make


@pytest.fixture
def enabled(esa1):
    """esa1 with Smart Software Licensing enabled and committed."""
    from gateway_ui import services
    from licensing_core.roles import GatewayRole

    now = appliance_now(esa1)
    services.sl_enable(appliance=esa1, user=None, now=now)
    services.changes_commit(appliance=esa1, user=None, role=GatewayRole.ADMINISTRATOR, now=now)
    esa1.refresh_from_db()
    return esa1


@pytest.fixture
def pools(demo_lab):
    """Purchased licences in the ESA virtual account (built through cssm_portal's models)."""
    from cssm_portal.models import LicensePool, VirtualAccount
    from licensing_core.catalogue import licenses_for

    va = VirtualAccount.objects.get(smart_account__lab=demo_lab, name="ESA")
    for lic in licenses_for("ESA"):
        LicensePool.objects.get_or_create(virtual_account=va, tag=lic.entitlement_tag, defaults={"purchased": 10})
    return va

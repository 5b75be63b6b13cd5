"""The factories build valid, related rows (and a token the lab accepts)."""

import pytest

from licensing_core import codes
from tests import factories

pytestmark = pytest.mark.django_db


def test_factories_build_a_consistent_world():
    va = factories.VirtualAccountFactory()
    instance = factories.ProductInstanceFactory(virtual_account=va)
    assert instance.lab == va.smart_account.lab
    assert instance.udi == f"PID:C395,SN:{instance.serial}"
    appliance = factories.ApplianceFactory(lab=instance.lab)
    assert appliance.lab.appliances.count() == 1
    pools = factories.LicensePoolFactory.create_batch(3, virtual_account=va)
    assert len({p.tag for p in pools}) == 3


def test_token_factory_makes_a_parseable_token():
    token = factories.RegistrationTokenFactory(secret_key=b"k" * 32)
    parsed = codes.token_parse(token.value, secret_key=b"k" * 32)
    assert str(parsed.token_id) == str(token.token_id)
    with pytest.raises(codes.CodeError):
        codes.token_parse(token.value, secret_key=b"other")


def test_user_factory_sets_a_usable_password(client):
    user = factories.UserFactory()
    assert client.login(username=user.username, password="smartlab-test")

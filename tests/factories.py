"""factory_boy factories for the main models, for tests that need many rows
or a particular shape without going through the demo lab."""

from datetime import UTC, datetime, timedelta

import factory
from django.contrib.auth import get_user_model

from cssm_portal.models import (
    AccountAccess,
    CssmRole,
    LicensePool,
    ProductInstance,
    RegistrationToken,
    SmartAccount,
    VirtualAccount,
)
from gateway_ui.models import Appliance, Product
from licensing_core import codes
from licensing_core.catalogue import ESA_LICENSES, make_udi
from licensing_core.models import Event, Lab, LabMembership
from licensing_core.roles import GatewayRole

LAB_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("smartlab-test")


class LabFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lab

    name = factory.Sequence(lambda n: f"Lab {n}")
    slug = factory.Sequence(lambda n: f"lab-{n}")
    clock_frozen_at = LAB_EPOCH


class LabMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LabMembership

    lab = factory.SubFactory(LabFactory)
    user = factory.SubFactory(UserFactory)
    gateway_role = GatewayRole.ADMINISTRATOR


class SmartAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SmartAccount

    lab = factory.SubFactory(LabFactory)
    name = factory.Sequence(lambda n: f"Account {n}")
    domain = factory.Sequence(lambda n: f"account{n}.example.com")


class VirtualAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VirtualAccount

    smart_account = factory.SubFactory(SmartAccountFactory)
    name = factory.Sequence(lambda n: f"VA {n}")
    is_default = False


class AccountAccessFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AccountAccess

    user = factory.SubFactory(UserFactory)
    smart_account = factory.SubFactory(SmartAccountFactory)
    virtual_account = None
    role = CssmRole.SA_ADMIN


class LicensePoolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LicensePool

    virtual_account = factory.SubFactory(VirtualAccountFactory)
    tag = factory.Iterator([lic.entitlement_tag for lic in ESA_LICENSES])
    purchased = 10


class RegistrationTokenFactory(factory.django.DjangoModelFactory):
    """A token with a real value; `secret_key` must match the lab's trust
    material for the endpoint to accept it (pass it when that matters)."""

    class Meta:
        model = RegistrationToken
        exclude = ("secret_key",)

    virtual_account = factory.SubFactory(VirtualAccountFactory)
    secret_key = b"factory-secret"
    created_at = LAB_EPOCH
    value = factory.LazyAttribute(lambda t: codes.token_generate(secret_key=t.secret_key, now=t.created_at))
    token_id = factory.LazyAttribute(lambda t: codes.token_parse(t.value, secret_key=t.secret_key).token_id)
    created_by = "factory"
    expires_at = factory.LazyAttribute(lambda t: t.created_at + timedelta(days=30))


class ProductInstanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductInstance

    virtual_account = factory.SubFactory(VirtualAccountFactory)
    lab = factory.LazyAttribute(lambda i: i.virtual_account.smart_account.lab)
    piid = factory.Faker("uuid4")
    pid = "C395"
    serial = factory.Sequence(lambda n: f"FCH{n:08d}")
    udi = factory.LazyAttribute(lambda i: make_udi(i.pid, i.serial))
    name = factory.Sequence(lambda n: f"esa{n}.example.com")
    product = "ESA"
    registered_at = LAB_EPOCH
    last_contact = LAB_EPOCH


class ApplianceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Appliance

    lab = factory.SubFactory(LabFactory)
    hostname = factory.Sequence(lambda n: f"esa{n}.example.com")
    product = Product.ESA
    model_pid = "C395"
    serial = factory.Sequence(lambda n: f"4C4C4544-{n:06d}")
    virtual = False


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    lab = factory.SubFactory(LabFactory)
    at = LAB_EPOCH
    side = "cssm"
    kind = "test.event"
    message = factory.Sequence(lambda n: f"Event {n}")

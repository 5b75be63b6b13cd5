"""Lab administration services: create, clone, reset, delete, members."""

import pytest
from django.contrib.auth import get_user_model

from gateway_ui.models import Appliance
from labs.models import LabOrigin
from labs.services import LabError, lab_clone, lab_create, lab_delete, lab_reset, member_add, member_remove
from licensing_core.models import Lab, LabMembership
from licensing_core.roles import GatewayRole

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(demo_lab):
    return get_user_model().objects.get(username="admin")


def test_create_empty_and_demo(admin):
    empty = lab_create(name="Empty", slug="empty", manager=admin)
    assert not Appliance.objects.filter(lab=empty).exists()
    assert LabMembership.objects.get(lab=empty, user=admin).is_manager
    world = lab_create(name="World", slug="world", manager=admin, demo=True)
    assert set(Appliance.objects.filter(lab=world).values_list("hostname", flat=True)) == {
        "esa1.example.com", "esa2.example.com", "sma1.example.com"}  # fmt: skip
    assert world.origin.kind == LabOrigin.Kind.DEMO


@pytest.mark.parametrize(
    ("slug", "message"), [("demo", "already exists"), ("Bad Slug", "lower-case"), ("", "lower-case")]
)
def test_create_refuses_bad_short_names(admin, slug, message):
    with pytest.raises(LabError, match=message):
        lab_create(name="x", slug=slug, manager=admin)


def test_create_refuses_unknown_scenario(admin):
    with pytest.raises(LabError, match="no scenario 'nope'"):
        lab_create(name="x", slug="x", manager=admin, scenario="nope")
    assert not Lab.objects.filter(slug="x").exists()


def test_clone_copies_and_reset_rebuilds(admin):
    world = lab_create(name="World", slug="world", manager=admin, demo=True)
    Appliance.objects.filter(lab=world, hostname="sma1.example.com").delete()
    clone = lab_clone(lab=world, name="Clone", slug="clone", manager=admin)
    assert Appliance.objects.filter(lab=clone).count() == 2
    reset = lab_reset(lab=world, manager=admin)
    assert reset.slug == "world"
    assert Appliance.objects.filter(lab=reset).count() == 3
    reset_clone = lab_reset(lab=clone, manager=admin)  # an imported lab resets to its file
    assert Appliance.objects.filter(lab=reset_clone).count() == 2
    assert LabMembership.objects.get(lab=reset_clone, user=admin).is_manager


def test_delete_needs_the_short_name(admin):
    lab = lab_create(name="Gone", slug="gone", manager=admin)
    with pytest.raises(LabError, match="Type the lab's short name"):
        lab_delete(lab=lab, confirm="nope")
    lab_delete(lab=lab, confirm="gone")
    assert not Lab.objects.filter(slug="gone").exists()


def test_members(admin):
    lab = lab_create(name="Team", slug="team", manager=admin)
    membership = member_add(lab=lab, username="operator", gateway_role=GatewayRole.OPERATOR)
    assert membership.gateway_role == GatewayRole.OPERATOR
    assert not membership.is_manager
    with pytest.raises(LabError, match="no user"):
        member_add(lab=lab, username="nobody", gateway_role=GatewayRole.OPERATOR)
    with pytest.raises(LabError, match="appliance roles"):
        member_add(lab=lab, username="guest", gateway_role="superhero")
    with pytest.raises(LabError, match="yourself"):
        member_remove(lab=lab, user_id=admin.pk, by=admin)
    member_remove(lab=lab, user_id=membership.user_id, by=admin)
    assert not LabMembership.objects.filter(lab=lab, user__username="operator").exists()

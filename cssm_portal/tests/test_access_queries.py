"""portal_for: the lab, the membership and the roles in one query, the Virtual Accounts in another; the
same 404s as before for a lab the user is not in and a Smart Account they have no role in."""

import pytest
from django.contrib.auth import get_user_model
from django.http import Http404

from cssm_portal.access import portal_for
from cssm_portal.models import AccountAccess, SmartAccount, VirtualAccount
from licensing_core.models import Lab, LabMembership

pytestmark = pytest.mark.django_db


def test_portal_for_takes_two_queries(lab, account, django_assert_num_queries):
    user = get_user_model().objects.get(username="sa-admin")
    with django_assert_num_queries(2):
        portal = portal_for(user, lab.slug, account.pk)
        assert portal.lab == lab
        assert portal.smart_account == account
        assert portal.smart_account.lab is portal.lab  # no query for it either
        assert portal.role_label == "Smart Account Administrator"
        assert portal.virtual_accounts


def _values(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_portal_for_reads_what_the_orm_reads(lab, account, django_assert_num_queries):
    """The queries are compiled once per process and read as rows: the objects carry the values (and types: the
    backend's converters run) that the ORM gives. The lab's columns the portal does not read load on first use."""
    user = get_user_model().objects.get(username="sa-admin")
    lab.faults = {"cssm_unreachable": True}
    lab.save(update_fields=["faults"])
    for _ in range(2):  # compiled, then from the cache
        portal = portal_for(user, lab.slug, account.pk)
        assert _values(portal.smart_account) == _values(SmartAccount.objects.get(pk=account.pk))
        assert [_values(va) for va in portal.virtual_accounts] == [
            _values(va) for va in VirtualAccount.objects.filter(smart_account=account).order_by("name")
        ]
        assert all(type(va.is_default) is bool for va in portal.virtual_accounts)
        assert portal.accounts == sorted(
            SmartAccount.objects.filter(lab=lab, access__user=user).distinct(), key=lambda a: a.name
        )
        with django_assert_num_queries(0):
            clock = (portal.lab.slug, portal.lab.clock_offset, portal.lab.clock_frozen_at, portal.lab.clock_floor)
        fresh = Lab.objects.get(pk=lab.pk)
        assert clock == (fresh.slug, fresh.clock_offset, fresh.clock_frozen_at, fresh.clock_floor)
        assert portal.now == lab.clock_frozen_at
        assert _values(portal.lab) == _values(fresh)  # the other columns, one query
        assert portal.lab.faults == {"cssm_unreachable": True}


def test_portal_for_a_va_role_sees_only_its_virtual_accounts(lab, account):
    user = get_user_model().objects.get(username="va-viewer")
    portal = portal_for(user, lab.slug, account.pk)
    assert [va.name for va in portal.virtual_accounts] == ["ESA"]
    assert portal.read_only


def test_portal_for_404s_outside_the_lab_and_the_account(lab, account):
    user = get_user_model().objects.get(username="sa-admin")
    with pytest.raises(Http404, match="No such Smart Account"):
        portal_for(user, lab.slug, 999_999)
    AccountAccess.objects.filter(user=user, smart_account=account).delete()
    with pytest.raises(Http404, match="No such Smart Account"):
        portal_for(user, lab.slug, account.pk)
    LabMembership.objects.filter(lab=lab, user=user).delete()
    with pytest.raises(Http404, match="No such lab"):
        portal_for(user, lab.slug, account.pk)
    with pytest.raises(Http404, match="No such lab"):
        portal_for(user, "no-such-lab", account.pk)

"""portal_for: the lab, the membership and the roles in one query, the Virtual Accounts in another; the
same 404s as before for a lab the user is not in and a Smart Account they have no role in."""

import pytest
from django.contrib.auth import get_user_model
from django.http import Http404

from cssm_portal.access import portal_for
from cssm_portal.models import AccountAccess
from licensing_core.models import LabMembership

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

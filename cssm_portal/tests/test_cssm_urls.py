"""fast_reverse ({% load cssm_urls %}) and RowReverse (a table's row links) give what reverse() gives, or
reverse()'s NoReverseMatch."""

import uuid

import pytest
from django.urls import NoReverseMatch, reverse

from cssm_portal.templatetags.cssm_urls import RowReverse, fast_reverse

PIID = uuid.UUID("12345678-1234-5678-1234-567812345678")


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("labs:home", []),
        ("logout", []),
        ("cssm:home", ["demo"]),
        ("cssm:sa_home", ["demo", 3]),
        ("cssm:general", ["lab-1_x", 3, 12]),
        ("cssm:instance", ["demo", 3, 12, PIID]),
        ("cssm:instance_transfer", ["demo", 0, 12, PIID]),
        ("cssm:token_download", ["demo", 3, 12, 7]),
        ("cssm:satellite_sync_request", ["demo", 3, 99]),
        ("cssm:instance", ["demo", 3, 12, str(PIID)]),  # a string PIID: reverse() decides
        ("cssm:general", ["demo", "3", 12]),  # a string pk: reverse() decides
    ],
)
def test_fast_reverse_is_reverse(name, args):
    assert fast_reverse(name, args) == reverse(name, args=args)
    assert fast_reverse(name, args) == reverse(name, args=args)  # the second time from the cached route


@pytest.mark.parametrize(
    "args",
    [["demo", -1, 12], ["demo", "x", 12], ["not a slug", 3, 12], ["demo", 3, True], ["demo", 3]],
)
def test_fast_reverse_refuses_what_reverse_refuses(args):
    with pytest.raises(NoReverseMatch):
        reverse("cssm:general", args=args)
    with pytest.raises(NoReverseMatch):
        fast_reverse("cssm:general", args)


@pytest.mark.parametrize(
    ("name", "args", "lasts"),
    [
        ("cssm:instance", ["demo", 3, 12], [PIID, uuid.UUID(int=7), str(PIID)]),
        ("cssm:token_download", ["lab-1_x", 0, 12], [7, 0, 123456789, "7"]),
        ("cssm:general", ["demo", 3], [12, 1]),
        ("cssm:general", ["demo", "3"], [12]),  # a string pk among the fixed arguments: reverse() decides
    ],
)
def test_row_reverse_is_reverse(name, args, lasts):
    row_url = RowReverse(name, args)
    for last in lasts * 2:  # the second time from the URL built for the first row
        assert row_url(last) == reverse(name, args=[*args, last])


@pytest.mark.parametrize("last", [-1, "x", None, True])
def test_row_reverse_refuses_what_reverse_refuses(last):
    row_url = RowReverse("cssm:general", ["demo", 3])
    assert row_url(5) == reverse("cssm:general", args=["demo", 3, 5])  # a good row first: the bad one is no int
    with pytest.raises(NoReverseMatch):
        row_url(last)


def test_row_reverse_refuses_bad_fixed_arguments():
    with pytest.raises(NoReverseMatch):
        RowReverse("cssm:general", ["not a slug", 3])(12)


@pytest.mark.django_db
def test_instances_list_links_are_the_reversed_routes(client, login_as, lab, account, va, now):
    """Every link of a Product Instances row, the reserved-licence ones included (views._row_links)."""
    from cssm_portal import services
    from cssm_portal.tests.conftest import tag
    from licensing_core import codes

    inst = services.reservation_authorize(
        va=va,
        request_code=codes.request_code_generate(pid="C395", serial="URL00001"),
        reservation_type="SPECIFIC",
        quantities={tag("case"): 1},
        actor="admin",
        now=now,
    ).instance
    services.reservation_update(instance=inst, quantities={tag("case"): 2}, actor="admin", now=now)
    login_as("sa-admin")
    html = client.get(reverse("cssm:instances", args=[lab.slug, account.pk, va.pk]) + f"?q={inst.name}").text
    args = [lab.slug, account.pk, va.pk, inst.piid]
    for name in ["instance", "instance_transfer", "instance_remove", "instance_update", "instance_confirm"]:
        url = reverse(f"cssm:{name}", args=args)
        assert f'href="{url}" hx-get="{url}"' in html, name


@pytest.mark.django_db
def test_general_token_links_are_the_reversed_routes(client, login_as, lab, account, va, token):
    login_as("sa-admin")
    html = client.get(reverse("cssm:general", args=[lab.slug, account.pk, va.pk])).text
    args = [lab.slug, account.pk, va.pk, token.pk]
    assert f'<a href="{reverse("cssm:token_download", args=args)}">Download...</a>' in html
    assert f'action="{reverse("cssm:token_revoke", args=args)}"' in html

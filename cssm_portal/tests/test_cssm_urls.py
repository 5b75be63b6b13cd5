"""fast_reverse ({% load cssm_urls %}) gives what reverse() gives, or reverse()'s NoReverseMatch."""

import uuid

import pytest
from django.urls import NoReverseMatch, reverse

from cssm_portal.templatetags.cssm_urls import fast_reverse

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

"""Every POST view, fuzzed with hypothesis: whatever the fields hold (or lack), the answer is
never a 500 and always says something: a form error, a message, or a refusal with its reason.

Field names come from the form classes; views that read request.POST directly list theirs.
A POST view missing from FIELDS fails `test_every_post_view_is_fuzzed`."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cssm_portal import forms as cf
from cssm_portal.account_views import SyncUploadForm
from gateway_ui import forms as gf
from labs import forms as lf
from labs.agreement_views import AgreementPublishForm
from labs.forms import AdvanceToForm
from licensing_core import catalogue
from tests.access.test_matrix import CSSM, GATEWAY, LABS
from tests.access.world import urls
from tests.fuzz.strategies import value

EXAMPLES = 25  # per view; docs/reliability.md multiplies this out

ESA_TAGS = [f"qty_{lic.entitlement_tag}" for lic in catalogue.ESA_LICENSES[:3]]


def fields(form_class, *extra):
    return [*form_class.base_fields, *extra]


FIELDS = {
    "cssm:sa_request": fields(cf.SmartAccountRequestForm),
    "cssm:sa_request_decide": ["decision"],
    "cssm:sa_request_complete": [],
    "cssm:token_new": fields(cf.TokenForm),
    "cssm:token_revoke": [],
    "cssm:license_transfer": fields(cf.TransferForm),
    "cssm:reserve": fields(cf.RequestCodeForm, "step", "reservation_type", *ESA_TAGS),
    "cssm:instance_transfer": fields(cf.TransferForm),
    "cssm:instance_remove": fields(cf.RemoveForm),
    "cssm:instance_update": ["step", *ESA_TAGS],
    "cssm:instance_confirm": fields(cf.ConfirmationForm),
    "cssm:instance_cancel_update": [],
    "cssm:virtual_accounts": fields(cf.VirtualAccountForm),
    "cssm:virtual_account_edit": fields(cf.VirtualAccountForm),
    "cssm:virtual_account_default": [],
    "cssm:alerts_action": ["action", "alert"],
    "cssm:preferences": fields(cf.PreferencesForm, "reset"),
    "cssm:convert": fields(cf.PakForm),
    "cssm:satellite_sync_upload": fields(SyncUploadForm),
    "cssm:satellite_authorization": [],
    "cssm:satellite_unregister": [],
    "cssm:agreement_accept": ["agreement"],
    "gateway:cluster_mode": ["mode", "machine", "next"],
    "gateway:sl_enable": ["all_machines"],
    "gateway:sl_mode": ["mode", "all_machines"],
    "gateway:sl_change_type": ["all_machines"],
    "gateway:sl_transport": fields(gf.TransportForm),
    "gateway:sl_register": fields(gf.RegisterForm, "action"),
    "gateway:sl_action": ["action"],
    "gateway:sl_deregister": [],
    "gateway:sl_agent_update": [],
    "gateway:sl_dlc_restart": [],
    "gateway:sl_request_code": ["step"],
    "gateway:sl_install": fields(gf.AuthCodeForm),
    "gateway:sl_reauthorize": fields(gf.AuthCodeForm),
    "gateway:sl_airgap": fields(gf.AirgapForm),
    "gateway:licenses": ["license"],
    "gateway:changes": ["do", "comment"],
    "gateway:alerts": fields(
        gf.RecipientForm, "delete", "alert_settings", "from_address", "initial_seconds", "max_seconds"
    ),
    "gateway:service_updates": fields(gf.ProxyForm),
    "labs:advance": fields(AdvanceToForm, "days"),
    "labs:freeze": ["frozen"],
    "labs:fault": ["fault", "on", "seconds"],
    "labs:new": fields(lf.NewLabForm),
    "labs:import": fields(lf.ImportForm),
    "labs:reproduce": fields(lf.PasteForm),
    "labs:clone": fields(lf.CloneForm),
    "labs:reset": ["confirm"],
    "labs:delete": fields(lf.DeleteForm),
    "labs:member_add": fields(lf.MemberForm),
    "labs:member_remove": ["user"],
    "labs:fault_skew": fields(lf.SkewForm),
    "labs:fault_revoke": fields(lf.RevokeForm),
    "labs:fault_shortage": fields(lf.ShortageForm),
    "labs:agreement_publish": fields(AgreementPublishForm),
}
FILE_FIELDS = {"request_file", "code_file", "file"}
MESSAGE_MARKERS = (
    'role="alert"',
    'class="messages"',
    'class="aos-messages"',
    "errorlist",
    'class="field-error"',
    # Dialogs that answer a valid submission in place rather than by a redirect:
    "The token was created.",
    "&lt;specificPLR&gt;",
)


def _post_routes():
    tables = {"gateway": GATEWAY, "cssm": CSSM, "labs": LABS}
    return [r for r in urls() if tables[r.namespace][r.name][1] is not None]


def test_every_post_view_is_fuzzed():
    assert {r.full_name for r in _post_routes()} == set(FIELDS)


def _field_value(name):
    if name in FILE_FIELDS:
        return st.binary(max_size=2048).map(lambda b: SimpleUploadedFile("code.txt", b))
    return st.one_of(value, st.lists(value, min_size=2, max_size=3))


def form_data(names):
    return st.fixed_dictionaries({}, optional={n: _field_value(n) for n in names})


def says_something(client, response) -> bool:
    """A redirect lands on a page that works (a successful action may land silently on its
    status page); a refusal carries a text; a form shown again says what is wrong."""
    status = response.status_code
    if status in (301, 302):
        location = response["Location"]
        return location.startswith("/") and client.get(location).status_code < 500
    if status == 204:
        return bool(response.get("HX-Redirect"))
    body = (b"".join(response.streaming_content) if response.streaming else response.content).decode(errors="replace")
    if 400 <= status < 500:
        return len(body.strip()) > 0
    return any(m in body for m in MESSAGE_MARKERS) or response.get("Content-Type", "").startswith("text/csv")


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.parametrize("route", _post_routes(), ids=lambda r: r.full_name)
def test_post_view_never_500(two_labs, route):
    demo, _ = two_labs
    client = Client(raise_request_exception=False)
    client.force_login(get_user_model().objects.get(username="admin"))
    url = route.url(demo)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=form_data(FIELDS[route.full_name]))
    def check(data):
        with transaction.atomic():
            response = client.post(url, data)
            assert response.status_code < 500, f"{route.full_name} {data!r}: {response.status_code}"
            assert says_something(client, response), f"{route.full_name} {data!r}: nothing said"
            transaction.set_rollback(True)

    check()

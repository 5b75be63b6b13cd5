"""Every view × every persona: the gateway roles (domain-notes §8.1, gateway_ui.permissions),
the CSSM roles (§5.12/§8.2, cssm_portal.access), an anonymous visitor and a user of another
lab. The URL list comes from the resolver: a view missing from the tables below fails
`test_every_view_is_in_the_matrix`.

Outcomes:  ok      the request reached the action (below 400; 409 or 422 when state or input refuse it)
           denied  403 with the reason on the page
           hidden  404 — the object does not exist for this user
           login   302 to the login page
           405     the view does not take this method
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client

from cssm_portal.access import EDIT_ROLES
from cssm_portal.models import CssmRole
from gateway_ui.permissions import MATRIX
from licensing_core.roles import GatewayRole
from tests.access.world import urls

R = GatewayRole

# --- the tables ------------------------------------------------------------------------------------

# gateway view -> (action needed for GET, action needed for POST); None: the method is not taken.
GATEWAY = {
    "home": ("view_status", None),
    "not_simulated": ("view_status", None),
    "cluster_mode": (None, "view_status"),
    "smart_licensing": ("view", None),
    "sl_status": ("view", None),
    "sl_enable": ("stage_enable", "stage_enable"),
    "sl_mode": (None, "register"),
    "sl_change_type": ("reservation", "reservation"),
    "sl_transport": ("stage_transport", "stage_transport"),
    "sl_register": ("register", "register"),
    "sl_action": (None, "register"),
    "sl_deregister": ("register", "register"),
    "sl_agent_update": (None, "agent_update"),
    "sl_dlc_restart": (None, "register"),
    "sl_request_code": ("reservation", "reservation"),
    "sl_install": ("reservation", "reservation"),
    "sl_reauthorize": ("reservation", "reservation"),
    "sl_airgap": ("airgap", "airgap"),
    "licenses": ("view", "licenses"),
    "changes": ("view_status", "commit"),
    "alerts": ("view", "alerts"),
    "smartlicense_log": ("view", None),
    "service_updates": ("view", "stage_proxy"),
}

# portal view -> (rule for GET, rule for POST). Rules:
#   member    any member of the lab          staff      the lab owner (Cisco) only
#   requester who asked for the account      sa         any role on the Smart Account
#   va_view   any role on the Virtual Account (ESA)
#   va_edit   an edit role on it (SA Admin/User, VA Admin/User); viewers are refused
#   sa_admin  Smart Account Administrator    any_edit   an edit role on some Virtual Account
CSSM = {
    "home": ("member", None),
    "sa_request": ("member", "member"),
    "sa_requests": ("member", None),
    "sa_request_decide": (None, "staff"),
    "sa_request_complete": (None, "requester"),
    "sa_home": ("sa", None),
    "general": ("va_view", None),
    "token_new": ("va_edit", "va_edit"),
    "token_download": ("va_view", None),
    "token_revoke": (None, "va_edit"),
    "licenses": ("va_view", None),
    "licenses_csv": ("va_view", None),
    "license_transfer": ("va_edit", "va_edit"),
    "reserve": ("va_edit", "va_edit"),
    "instances": ("va_view", None),
    "instance": ("va_view", None),
    "instance_transfer": ("va_edit", "va_edit"),
    "instance_remove": ("va_edit", "va_edit"),
    "instance_update": ("va_edit", "va_edit"),
    "instance_confirm": ("va_edit", "va_edit"),
    "instance_cancel_update": (None, "va_edit"),
    "authorization_code": ("va_view", None),
    "va_events": ("va_view", None),
    "va_events_csv": ("va_view", None),
    "virtual_accounts": ("sa", "sa_admin"),
    "virtual_account_edit": (None, "sa_admin"),
    "virtual_account_default": (None, "sa_admin"),
    "alerts": ("sa", None),
    "alerts_action": (None, "any_edit"),
    "reports": ("sa", None),
    "preferences": ("sa", "any_edit"),
    "activity": ("sa", None),
    "activity_events": ("sa", None),
    "convert": ("sa", "any_edit"),
    "on_prem": ("sa", None),
    "satellite_sync_upload": (None, "sa_admin"),
    "satellite_sync_request": ("sa_admin", None),
    "satellite_authorization": (None, "sa_admin"),
    "satellite_unregister": ("sa_admin", "sa_admin"),
    "agreement": ("sa", None),
    "agreement_accept": (None, "sa_admin"),
}

LABS = {
    "home": ("member", None),
    "detail": ("member", None),
    "advance": (None, "manager"),
    "freeze": (None, "manager"),
    "fault": (None, "manager"),
    "mailbox": ("member", None),
    "new": (None, "member"),
    "import": (None, "member"),
    "reproduce": ("member", "member"),
    "clone": (None, "manager"),
    "reset": (None, "manager"),
    "delete": (None, "manager"),
    "export": ("manager", None),
    "member_add": (None, "manager"),
    "member_remove": (None, "manager"),
    "fault_skew": (None, "manager"),
    "fault_revoke": (None, "manager"),
    "fault_shortage": (None, "manager"),
    "agreement_publish": (None, "manager"),
    "split": ("member", None),
}

# What each POST sends: enough to reach the guarded action.
POST_DATA = {
    "gateway:changes": {"do": "commit"},
    "cssm:alerts_action": {"action": "dismiss", "alert": "1"},
    "cssm:sa_request_decide": {"decision": "reject"},
    "labs:fault": {"fault": "cssm_slow", "on": "0"},
    "labs:freeze": {"frozen": "1"},
    "labs:advance": {"days": "1"},
}

# Demo personas: (gateway role on the demo appliances, CSSM role, on the ESA Virtual Account only?)
PERSONAS = {
    "admin": (R.ADMINISTRATOR, CssmRole.SA_ADMIN, False),
    "operator": (R.OPERATOR, None, False),
    "technician": (R.TECHNICIAN, None, False),
    "readonly": (R.READ_ONLY_OPERATOR, None, False),
    "guest": (R.GUEST, None, False),
    "sa-admin": (R.GUEST, CssmRole.SA_ADMIN, False),
    "sa-user": (R.GUEST, CssmRole.SA_USER, False),
    "sa-viewer": (R.GUEST, CssmRole.SA_VIEWER, False),
    "va-admin": (R.GUEST, CssmRole.VA_ADMIN, True),
    "va-user": (R.GUEST, CssmRole.VA_USER, True),
    "va-viewer": (R.GUEST, CssmRole.VA_VIEWER, True),
}


def expected(username: str, route, method: str) -> str:
    """The outcome the spec gives `username` (a demo persona) on a demo-lab URL."""
    table = {"gateway": GATEWAY, "cssm": CSSM, "labs": LABS}[route.namespace]
    rule = table[route.name][0 if method == "GET" else 1]
    if rule is None:
        return "405"
    gateway_role, cssm_role, _ = PERSONAS[username]
    if route.namespace == "gateway":
        return "ok" if gateway_role in MATRIX[rule] else "denied"
    if route.namespace == "labs":
        return "ok" if rule == "member" or username == "admin" else "denied"
    edit = cssm_role in EDIT_ROLES
    if rule == "member":
        return "ok"
    if rule == "staff":
        return "ok" if username == "admin" else "denied"
    if rule == "requester":
        return "ok" if username == "guest" else "hidden"
    if cssm_role is None:
        return "hidden"
    if rule in ("sa", "va_view"):
        return "ok"
    if rule in ("va_edit", "any_edit"):
        return "ok" if edit else "denied"
    if rule == "sa_admin":
        return "ok" if cssm_role == CssmRole.SA_ADMIN else "denied"
    raise AssertionError(f"unknown rule {rule}")


def outcome(response) -> str:
    status = response.status_code
    if status == 302 and response["Location"].startswith("/accounts/login/"):
        return "login"
    if status in (403, 404, 405):
        return {403: "denied", 404: "hidden", 405: "405"}[status]
    if status >= 500:
        return f"ERROR {status}"
    if status < 400 or status in (409, 422):  # 409/422: reached the action, refused by state or input
        return "ok"
    return f"status {status}"


def request(client, method: str, url: str, data: dict):
    """One request whose changes are rolled back, so every row starts from the same world."""
    with transaction.atomic():
        response = client.get(url) if method == "GET" else client.post(url, data)
        transaction.set_rollback(True)
    return response


def sweep(client, values, expect) -> list[str]:
    """Request every URL with both methods; return the rows that differ from `expect`."""
    wrong = []
    for route in urls():
        url = route.url(values)
        for method in ("GET", "POST"):
            want = expect(route, method)
            if want is None:
                continue
            response = request(client, method, url, POST_DATA.get(route.full_name, {}))
            got = outcome(response)
            if got != want:
                wrong.append(f"{method:4} {route.full_name:32} expected {want:7} got {got}  ({url})")
            elif got == "denied" and route.namespace != "labs":
                body = response.content.decode()
                if not any(w in body for w in ("not allowed", "cannot", "Only", "read-only", "not change")):
                    wrong.append(f"{method:4} {route.full_name:32} refused without a reason  ({url})")
    return wrong


pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_every_view_is_in_the_matrix():
    tables = {"gateway": GATEWAY, "cssm": CSSM, "labs": LABS}
    found = {(r.namespace, r.name) for r in urls()}
    listed = {(ns, name) for ns, table in tables.items() for name in table}
    assert found == listed, f"missing from the matrix: {sorted(found - listed)}; stale: {sorted(listed - found)}"


@pytest.mark.parametrize("username", list(PERSONAS))
def test_demo_persona(two_labs, username):
    demo, _ = two_labs
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    wrong = sweep(client, demo, lambda route, method: expected(username, route, method))
    assert not wrong, f"{username}:\n" + "\n".join(wrong)


def test_anonymous_visitor_is_sent_to_login_everywhere(two_labs):
    demo, _ = two_labs
    wrong = sweep(Client(), demo, lambda route, method: "login")
    assert not wrong, "\n".join(wrong)


def test_user_of_another_lab_finds_nothing_of_the_demo_lab(two_labs):
    demo, _ = two_labs
    client = Client()
    client.force_login(get_user_model().objects.get(username="outsider"))

    def expect(route, method):
        table = {"gateway": GATEWAY, "cssm": CSSM, "labs": LABS}[route.namespace]
        if table[route.name][0 if method == "GET" else 1] is None:
            return None  # 405 whatever the ids: says nothing about them
        if route.full_name in ("labs:home", "labs:new", "labs:import", "labs:reproduce"):
            return "ok"  # pages of no particular lab
        return "hidden"

    wrong = sweep(client, demo, expect)
    assert not wrong, "\n".join(wrong)
    home = client.get("/").content.decode()
    assert "Demo lab" not in home
    assert "esa1.example.com" not in home


@pytest.mark.parametrize("swap", ["sa_id", "va_id", "token_id", "pool_id", "piid", "req_id", "hostname", "sat_id"])
def test_ids_of_another_lab_are_not_reachable_by_guessing(two_labs, swap):
    """The demo admin (all rights in the demo lab) puts one id of the other lab into demo URLs: 404."""
    demo, theirs = two_labs
    client = Client()
    client.force_login(get_user_model().objects.get(username="admin"))
    values = {**demo, swap: theirs[swap]}

    def expect(route, method):
        if swap not in route.params:
            return None
        table = {"gateway": GATEWAY, "cssm": CSSM, "labs": LABS}[route.namespace]
        if table[route.name][0 if method == "GET" else 1] is None:
            return None
        return "hidden"

    wrong = sweep(client, values, expect)
    assert not wrong, "\n".join(wrong)


def test_virtual_account_roles_do_not_reach_other_virtual_accounts(two_labs):
    """va-admin holds ESA only: the SMA Virtual Account's URLs are 404 for it."""
    from cssm_portal.models import VirtualAccount

    demo, _ = two_labs
    sma = VirtualAccount.objects.get(smart_account_id=demo["sa_id"], name="SMA")
    client = Client()
    client.force_login(get_user_model().objects.get(username="va-admin"))

    def expect(route, method):
        if "va_id" not in route.params or route.name in ("virtual_account_edit", "virtual_account_default"):
            return None
        if CSSM[route.name][0 if method == "GET" else 1] is None:
            return None
        return "hidden"

    wrong = sweep(client, {**demo, "va_id": sma.pk}, expect)
    assert not wrong, "\n".join(wrong)


def test_every_post_needs_a_csrf_token(two_labs):
    demo, _ = two_labs
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.get(username="admin"))
    wrong = []
    for route in urls():
        table = {"gateway": GATEWAY, "cssm": CSSM, "labs": LABS}[route.namespace]
        if table[route.name][1] is None:
            continue
        response = request(client, "POST", route.url(demo), POST_DATA.get(route.full_name, {}))
        if response.status_code != 403 or b"CSRF" not in response.content:
            wrong.append(f"{route.full_name}: {response.status_code}")
    assert not wrong, "POST accepted without a CSRF token:\n" + "\n".join(wrong)

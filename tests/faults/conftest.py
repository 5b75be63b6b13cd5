# The appliance fixtures of gateway_ui's tests (esa1, enabled, cssm, make_token, pools).
from gateway_ui.tests.conftest import cssm, enabled, esa1, make_token, pools  # noqa: F401

from cssm_portal.tests.conftest import account, agent, lab, make_agent, now, token, va  # noqa: F401
from gateway_ui.tests.conftest import enabled, esa1  # noqa: F401

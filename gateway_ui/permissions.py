"""AsyncOS user roles on the Smart Licensing pages (domain-notes §8.1 matrix), enforced on the server."""

from licensing_core.roles import GatewayRole

R = GatewayRole
ALL_VIEWERS = frozenset({R.ADMINISTRATOR, R.OPERATOR, R.TECHNICIAN, R.READ_ONLY_OPERATOR})

# action -> roles allowed to do it
MATRIX: dict[str, frozenset[str]] = {
    "view": ALL_VIEWERS,
    "view_status": ALL_VIEWERS | {R.GUEST},
    # Staging a change: Read-Only Operators may make and submit changes but not commit them.
    "stage_enable": frozenset({R.ADMINISTRATOR, R.READ_ONLY_OPERATOR}),
    "commit_enable": frozenset({R.ADMINISTRATOR}),
    "stage_transport": frozenset({R.ADMINISTRATOR, R.TECHNICIAN, R.OPERATOR, R.READ_ONLY_OPERATOR}),
    "stage_proxy": frozenset({R.ADMINISTRATOR, R.OPERATOR, R.READ_ONLY_OPERATOR}),
    "commit": frozenset({R.ADMINISTRATOR, R.TECHNICIAN, R.OPERATOR}),
    # Abandoning staged changes: whoever may stage some change.
    "abandon": ALL_VIEWERS,
    "register": frozenset({R.ADMINISTRATOR, R.TECHNICIAN, R.OPERATOR}),
    "licenses": frozenset({R.ADMINISTRATOR, R.TECHNICIAN, R.OPERATOR}),
    "reservation": frozenset({R.ADMINISTRATOR, R.TECHNICIAN}),
    "agent_update": frozenset({R.ADMINISTRATOR, R.TECHNICIAN}),
    "airgap": frozenset({R.ADMINISTRATOR, R.TECHNICIAN}),
    "alerts": frozenset({R.ADMINISTRATOR, R.OPERATOR}),
}

MESSAGES = {
    "view": "Your user role does not allow you to view Smart Software Licensing.",
    "commit": "Your user role (Read-Only Operator) can make and submit changes but cannot commit them.",
}


class RoleRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def role_allows(role: str, action: str) -> bool:
    return role in MATRIX[action]


def role_require(role: str, action: str) -> None:
    if role_allows(role, action):
        return
    if action in ("commit", "commit_enable") and role == R.READ_ONLY_OPERATOR:
        raise RoleRefused(MESSAGES["commit"])
    label = GatewayRole(role).label if role in GatewayRole.values else role
    raise RoleRefused(f"Access denied: the {label} role is not allowed to perform this action.")

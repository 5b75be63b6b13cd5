"""Alert catalogues: gateway system alerts (§7.1) and CSSM alert types (§5.8).

Gateway alerts are class System; severities follow the RECOMMEND column of
§7.1. The event names are the guide's wording; ``text`` is the message
template rendered with ``str.format`` (placeholders listed per alert).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from django.db.models import TextChoices


class GatewaySeverity(TextChoices):
    INFORMATION = "Information", "Information"
    WARNING = "Warning", "Warning"
    CRITICAL = "Critical", "Critical"


class GatewayAlertKind(TextChoices):
    """Stable keys for §7.1 (value stored in the DB; label is the guide's event)."""

    SL_ENABLED = "sl_enabled", "Smart Software Licensing successfully enabled"
    SL_ENABLE_FAILED = "sl_enable_failed", "Smart Software Licensing enabling failed"
    EVAL_STARTED = "eval_started", "Beginning of the evaluation period"
    EVAL_EXPIRY = "eval_expiry", "Expiry of evaluation period"
    REGISTERED = "registered", "Successfully registered"
    REGISTRATION_FAILED = "registration_failed", "Registration failed"
    AUTHORIZED = "authorized", "Successfully authorized"
    AUTHORIZATION_FAILED = "authorization_failed", "Authorization failed"
    DEREGISTERED = "deregistered", "Successfully deregistered"
    DEREGISTRATION_FAILED = "deregistration_failed", "Deregistration failed"
    ID_RENEWED = "id_renewed", "Successfully renewed Id certificate"
    ID_RENEW_FAILED = "id_renew_failed", "Renewal of Id certificate failed"
    AUTH_EXPIRED = "auth_expired", "Expiry of authorization"
    ID_EXPIRED = "id_expired", "Expiry of Id certificate"
    OOC_GRACE_EXPIRY = "ooc_grace_expiry", "Expiry of out of compliance grace period"
    FEATURE_EXPIRED = "feature_expired", "First instance of the expiry of a feature"
    RESERVATION_INSTALL_REMINDER = (
        "reservation_install_reminder",
        "Authorization code is installed after generation of request code",
    )
    RESERVATION_INSTALLED = "reservation_installed", "Authorization code is installed successfully"
    RETURN_CODE_GENERATED = "return_code_generated", "Return code is generated successfully"
    RESERVATION_EXPIRED = "reservation_expired", "Reservation of specific feature license is expired"
    RESERVATION_EXPIRY_WARNING = (
        "reservation_expiry_warning",
        "Warning before expiry of specific feature license reserved",
    )
    DLC_FAILED = "dlc_failed", "Device Led Conversion failed"


@dataclass(frozen=True)
class GatewayAlert:
    code: str  # "G1".."G22" (§7.1 row)
    event: str  # guide wording
    alert_class: str
    severity: str  # GatewaySeverity value; see severity_for() for scheduled ones
    text: str  # message template with {placeholders}
    kind: str = ""  # GatewayAlertKind value

    @property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.text) if name)

    def render(self, **values: object) -> str:
        """Fill the template; a missing placeholder is a programming error (KeyError)."""
        return self.text.format(**values)


K = GatewayAlertKind
_INFO, _WARN, _CRIT = GatewaySeverity.INFORMATION, GatewaySeverity.WARNING, GatewaySeverity.CRITICAL

_ROWS: tuple[tuple[str, GatewayAlertKind, str, str], ...] = (
    ("G1", K.SL_ENABLED, _INFO, "Smart Software Licensing successfully enabled"),
    ("G2", K.SL_ENABLE_FAILED, _CRIT, "Smart Software Licensing enabling failed: {reason}"),
    ("G3", K.EVAL_STARTED, _INFO, "The evaluation period has begun. Evaluation period remaining: {remaining}"),
    (
        "G4",
        K.EVAL_EXPIRY,
        _WARN,
        "The evaluation period expires in {days_left} day(s). Register the product with Smart Software Manager.",
    ),
    ("G5", K.REGISTERED, _INFO, "The product is registered successfully with Smart Software Manager."),
    ("G6", K.REGISTRATION_FAILED, _CRIT, "Registration of the product with Smart Software Manager failed: {reason}"),
    ("G7", K.AUTHORIZED, _INFO, "Renew authorization of the product with Smart Software Manager is successful."),
    ("G8", K.AUTHORIZATION_FAILED, _WARN, "Authorization of the product with Smart Software Manager failed: {reason}"),
    ("G9", K.DEREGISTERED, _INFO, "The product is deregistered successfully from Smart Software Manager."),
    (
        "G10",
        K.DEREGISTRATION_FAILED,
        _WARN,
        "Deregistration of the product from Smart Software Manager failed: {reason}",
    ),
    ("G11", K.ID_RENEWED, _INFO, "The Id certificate is renewed successfully. Registration expires on {expires_on}."),
    ("G12", K.ID_RENEW_FAILED, _WARN, "Renewal of the Id certificate failed: {reason}"),
    (
        "G13",
        K.AUTH_EXPIRED,
        _CRIT,
        "The authorization of the product has expired. Licensed features are no longer available.",
    ),
    (
        "G14",
        K.ID_EXPIRED,
        _CRIT,
        "The Id certificate has expired. Register the product with Smart Software Manager again.",
    ),
    (
        "G15",
        K.OOC_GRACE_EXPIRY,
        _WARN,
        "The out of compliance grace period for {license} expires in {days_left} day(s).",
    ),
    ("G16", K.FEATURE_EXPIRED, _CRIT, "The {license} feature has expired and is no longer available."),
    (
        "G17",
        K.RESERVATION_INSTALL_REMINDER,
        _WARN,
        "A request code was generated on {requested_on}. Install the authorization code from Smart Software Manager.",
    ),
    ("G18", K.RESERVATION_INSTALLED, _INFO, "Smart Agent successfully installed the license reservation."),
    ("G19", K.RETURN_CODE_GENERATED, _INFO, "Smart Agent successfully generated the return code for the product."),
    ("G20", K.RESERVATION_EXPIRED, _CRIT, "The reservation of the {license} license has expired."),
    (
        "G21",
        K.RESERVATION_EXPIRY_WARNING,
        _WARN,
        "The reservation of the {license} license expires in {days_left} day(s).",
    ),
    ("G22", K.DLC_FAILED, _WARN, "Device Led Conversion failed: {reason}"),
)

GATEWAY_ALERTS: dict[str, GatewayAlert] = {
    code: GatewayAlert(code, kind.label, "System", severity, text, kind.value) for code, kind, severity, text in _ROWS
}
GATEWAY_ALERT_BY_KIND: dict[str, GatewayAlert] = {a.kind: a for a in GATEWAY_ALERTS.values()}

# Messages for the scheduled alerts once the deadline is reached (days_left == 0).
_EXPIRED_TEXT: dict[str, str] = {
    K.EVAL_EXPIRY: "The evaluation period has expired. Register the product with Smart Software Manager.",
    K.OOC_GRACE_EXPIRY: "The out of compliance grace period for {license} has expired. "
    "The feature is no longer available.",
}
_SCHEDULED = frozenset(_EXPIRED_TEXT)


def alert_for(kind: str) -> GatewayAlert:
    return GATEWAY_ALERT_BY_KIND[GatewayAlertKind(kind)]


def severity_for(kind: str, days_left: int | None = None) -> GatewaySeverity:
    """G4 and G15 are Warning before the deadline and Critical at it (§7.1)."""
    kind = GatewayAlertKind(kind)
    if kind in _SCHEDULED and days_left is not None and days_left <= 0:
        return GatewaySeverity.CRITICAL
    return GatewaySeverity(alert_for(kind).severity)


def render_alert(kind: str, *, days_left: int | None = None, **values: object) -> str:
    """Message for an alert, switching G4/G15 to the "has expired" text at days_left 0."""
    kind = GatewayAlertKind(kind)
    if kind in _SCHEDULED and days_left is not None and days_left <= 0:
        return _EXPIRED_TEXT[kind].format(**values)
    if days_left is not None:
        values["days_left"] = days_left
    return alert_for(kind).render(**values)


# Which gateway alert a schedules.Due fires. Renewals and DLC completion are
# jobs whose outcome picks the alert (G7/G8, G11/G12, G22), so they are absent.
ALERT_FOR_DUE: dict[str, GatewayAlertKind] = {
    "eval_notice": K.EVAL_EXPIRY,
    "eval_expiry": K.EVAL_EXPIRY,
    "ooc_notice": K.OOC_GRACE_EXPIRY,
    "ooc_expiry": K.OOC_GRACE_EXPIRY,
    "auth_expiry": K.AUTH_EXPIRED,
    "id_expiry": K.ID_EXPIRED,
    "reservation_reminder": K.RESERVATION_INSTALL_REMINDER,
    "reserved_license_warning": K.RESERVATION_EXPIRY_WARNING,
    "reserved_license_expiry": K.RESERVATION_EXPIRED,
}


# --- CSSM (§5.8) ----------------------------------------------------------------------


class CssmSeverity(TextChoices):
    MAJOR = "Major", "Major"
    MINOR = "Minor", "Minor"
    INFORMATIONAL = "Informational", "Informational"


class CssmAlertType(TextChoices):
    INSUFFICIENT_LICENSES = "Insufficient Licenses", "Insufficient Licenses"
    PRODUCT_INSTANCE_FAILED_TO_RENEW = "Product Instance Failed to Renew", "Product Instance Failed to Renew"
    PRODUCT_INSTANCE_FAILED_TO_CONNECT = "Product Instance Failed to Connect", "Product Instance Failed to Connect"
    UPDATED_SMART_LICENSE_AGREEMENT = "Updated Smart License Agreement", "Updated Smart License Agreement"
    SYNCHRONIZATION_OVERDUE = "Synchronization Overdue", "Synchronization Overdue"
    SATELLITE_UNREGISTERED_AND_REMOVED = "Satellite Unregistered and Removed", "Satellite Unregistered and Removed"
    SMART_LICENSING_AGREEMENT_PENDING = "Smart Licensing Agreement Pending", "Smart Licensing Agreement Pending"
    AUTHORIZATION_PENDING = "Authorization Pending", "Authorization Pending"
    SATELLITE_SYNC_DEADLINE = (
        "Upcoming CSSM Satellite Sync Deadline (30 Day)",
        "Upcoming CSSM Satellite Sync Deadline (30 Day)",
    )
    SATELLITE_EXPIRED_AND_REMOVED = (
        "CSSM Satellite expired and removed (90 Days of no sync)",
        "CSSM Satellite expired and removed (90 Days of no sync)",
    )
    SATELLITE_AUTHORIZATION_FILE_READY = "Satellite Authorization File Ready", "Satellite Authorization File Ready"
    LICENSES_EXPIRED = "Licenses Expired", "Licenses Expired"
    LICENSES_EXPIRING = "Licenses Expiring", "Licenses Expiring"
    RESERVED_LICENSE_EXPIRED = "Reserved License Expired", "Reserved License Expired"
    DUPLICATE_LICENSES = "Duplicate Licenses", "Duplicate Licenses"
    RESERVED_LICENSES_RETURNED = (
        "Reserved Licenses Returned to Smart Account",
        "Reserved Licenses Returned to Smart Account",
    )
    RESTRICTED_LICENSE_NOT_AVAILABLE = "Restricted License Not Available", "Restricted License Not Available"


T = CssmAlertType
CSSM_ALERT_SEVERITY: dict[str, CssmSeverity] = {
    # §5.8 RECOMMEND mapping ...
    T.INSUFFICIENT_LICENSES: CssmSeverity.MAJOR,
    T.LICENSES_EXPIRED: CssmSeverity.MAJOR,
    T.PRODUCT_INSTANCE_FAILED_TO_RENEW: CssmSeverity.MAJOR,
    T.RESERVED_LICENSE_EXPIRED: CssmSeverity.MAJOR,
    T.SATELLITE_EXPIRED_AND_REMOVED: CssmSeverity.MAJOR,
    T.LICENSES_EXPIRING: CssmSeverity.MINOR,
    T.PRODUCT_INSTANCE_FAILED_TO_CONNECT: CssmSeverity.MINOR,
    T.SYNCHRONIZATION_OVERDUE: CssmSeverity.MINOR,
    T.DUPLICATE_LICENSES: CssmSeverity.MINOR,
    T.RESERVED_LICENSES_RETURNED: CssmSeverity.INFORMATIONAL,
    T.SATELLITE_AUTHORIZATION_FILE_READY: CssmSeverity.INFORMATIONAL,
    T.UPDATED_SMART_LICENSE_AGREEMENT: CssmSeverity.INFORMATIONAL,
    T.SMART_LICENSING_AGREEMENT_PENDING: CssmSeverity.INFORMATIONAL,
    # ... and our calls where §5.8 is silent: removal is as bad as expiry (Major);
    # things the user must act on soon are Minor.
    T.SATELLITE_UNREGISTERED_AND_REMOVED: CssmSeverity.MAJOR,
    T.SATELLITE_SYNC_DEADLINE: CssmSeverity.MINOR,
    T.AUTHORIZATION_PENDING: CssmSeverity.MINOR,
    T.RESTRICTED_LICENSE_NOT_AVAILABLE: CssmSeverity.MINOR,
}

"""Registration tokens and the air-gap codes (domain-notes §5.2, §6.4).

Every generator has a parser that gives a specific reason through
``CodeError.reason``; signed values (tokens, authorization codes, return
codes) reject any single-character change. Formats:

* Registration token: base64 of ``<uuid4>-<epoch-ms>|<base64 HMAC-SHA256>``
  (the decoded shape of real CSSM tokens), MAC keyed by the CSSM secret.
* Request code: ``CB-Z<pid>:<serial>-<8 base62 nonce>-<2 hex check>``; the
  check is the low byte of CRC-32 over everything before it (typo guard only,
  request codes are not secret).
* Authorization code: the ``<specificPLR>`` XML of §6.4. Design choice: the
  request code it answers is bound in a ``<requestCode>`` element inside
  ``<authorizationCode>``. ``<flag>`` is ``A`` for a specific (SLR) and ``P``
  for a permanent (PLR) reservation. ``<signature>`` is base64 ECDSA-SHA256 by
  the CSSM CA key over the exact bytes of the ``<authorizationCode>…
  </authorizationCode>`` element followed by the exact bytes of
  ``<udi>…</udi>``, so nothing a device relies on can change unnoticed.
* Confirmation code: first 8 hex of SHA-256 of the authorization code
  (whitespace removed).
* Return code: 9 dash-separated base62 groups (8×6 + 3). The first two groups
  are a salt taken from the nonce; the rest is an HMAC over piid, UDI and salt,
  so the CSSM can check it knowing only the instance.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from .catalogue import check_pid, check_serial, make_udi
from .pki import CertificateAuthority, PkiError, sign_with_ca, verify_with_ca

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_B62_SET = frozenset(BASE62)


class CodeError(ValueError):
    """A token or code was refused; ``reason`` is shown to the user as is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now


def _b62(data: bytes, width: int) -> str:
    """Fixed-width base62 of the low-order digits of ``data`` read as an integer."""
    n = int.from_bytes(data, "big")
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(BASE62[r])
    return "".join(reversed(out))


def _random_b62(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def _strict_b64decode(text: str) -> bytes:
    """Decode base64, refusing anything that does not re-encode to the same text.

    Without the round-trip check two texts differing only in a final
    character's unused bits would decode to the same bytes.
    """
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError("non-canonical base64")
    return raw


# --- Registration tokens ---------------------------------------------------------

TOKEN_EMPTY = "Token cannot be empty"
TOKEN_INVALID = "The token is not a valid registration token."
TOKEN_FOREIGN = "The token was not issued by this Smart Software Manager."
_TOKEN_RAW_RE = re.compile(
    r"(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})-(?P<ms>[0-9]{13})"
)


@dataclass(frozen=True)
class ParsedToken:
    token_id: str  # uuid4 string; the CSSM looks the token up by this
    created_at: datetime


def _token_mac(secret_key: bytes, raw: str) -> str:
    return base64.b64encode(hmac.new(secret_key, raw.encode("ascii"), hashlib.sha256).digest()).decode("ascii")


def token_generate(*, secret_key: bytes, now: datetime, token_id: str | None = None) -> str:
    """New registration token (one line of base64)."""
    ms = int(_aware(now).timestamp() * 1000)
    tid = str(uuid.UUID(token_id)) if token_id else str(uuid.uuid4())
    raw = f"{tid}-{ms:013d}"
    payload = f"{raw}|{_token_mac(secret_key, raw)}"
    return base64.b64encode(payload.encode("ascii")).decode("ascii")


def _normalize_token(token: str) -> str:
    # Real tokens are wrapped every 60 characters, sometimes URL-encoded (%0A).
    return "".join(token.replace("%0A", "").replace("%0a", "").split())


def token_parse(token: str, *, secret_key: bytes) -> ParsedToken:
    text = _normalize_token(token)
    if not text:
        raise CodeError(TOKEN_EMPTY)
    try:
        payload = _strict_b64decode(text).decode("ascii")
    except (binascii.Error, ValueError):
        raise CodeError(TOKEN_INVALID) from None
    raw, sep, mac = payload.partition("|")
    match = _TOKEN_RAW_RE.fullmatch(raw)
    if not sep or not match:
        raise CodeError(TOKEN_INVALID)
    if not hmac.compare_digest(mac.encode("ascii"), _token_mac(secret_key, raw).encode("ascii")):
        raise CodeError(TOKEN_FOREIGN)
    created_at = datetime.fromtimestamp(int(match["ms"]) / 1000, tz=UTC)
    return ParsedToken(token_id=match["id"], created_at=created_at)


def token_display(token: str) -> str:
    """Truncated form used in the CSSM token table, e.g. ``NzkzOWU0MzEtZjg4...``."""
    text = _normalize_token(token)
    return text[:16] + "..." if len(text) > 16 else text


def token_wrapped(token: str, width: int = 60) -> str:
    """The token wrapped like a real one (for Download...)."""
    text = _normalize_token(token)
    return "\n".join(text[i : i + width] for i in range(0, len(text), width))


# --- Reservation request codes ------------------------------------------------------

REQUEST_PREFIX = "CB-Z"
_NONCE_RE = re.compile(r"[0-9A-Za-z]{8}")


@dataclass(frozen=True)
class RequestCode:
    pid: str
    serial: str
    nonce: str

    @property
    def udi(self) -> str:
        return make_udi(self.pid, self.serial)

    @property
    def code(self) -> str:
        body = f"{REQUEST_PREFIX}{self.pid}:{self.serial}-{self.nonce}"
        return f"{body}-{_crc(body)}"


def _crc(body: str) -> str:
    return f"{zlib.crc32(body.encode('utf-8')) & 0xFF:02X}"


def request_code_generate(*, pid: str, serial: str, nonce: str | None = None) -> str:
    try:
        check_pid(pid)
        check_serial(serial)
    except ValueError as exc:
        raise CodeError(str(exc)) from None
    if nonce is None:
        nonce = _random_b62(8)
    elif not _NONCE_RE.fullmatch(nonce):
        raise CodeError("The request code nonce must be 8 letters or digits.")
    return RequestCode(pid, serial, nonce).code


def request_code_parse(code: str) -> RequestCode:
    text = "".join(code.split())
    if not text:
        raise CodeError("The request code is empty.")
    if not text.startswith(REQUEST_PREFIX):
        raise CodeError("The request code must start with CB-Z. Copy the whole code shown on the appliance.")
    parts = text.rsplit("-", 2)
    if len(parts) != 3 or not parts[0].startswith(REQUEST_PREFIX):
        raise CodeError("The request code is incomplete. Copy the whole code shown on the appliance.")
    head, nonce, check = parts
    if not re.fullmatch(r"[0-9A-Fa-f]{2}", check):
        raise CodeError("The request code is damaged (the last two characters must be a hexadecimal checksum).")
    if _crc(f"{head}-{nonce}") != check.upper():
        raise CodeError("The request code is damaged (checksum mismatch). Copy the code again from the appliance.")
    if not _NONCE_RE.fullmatch(nonce):
        raise CodeError("The request code is damaged (the random part must be 8 letters or digits).")
    pid, sep, serial = head[len(REQUEST_PREFIX) :].partition(":")
    if not sep:
        raise CodeError("The request code does not contain a product ID and serial number.")
    try:
        check_pid(pid)
        check_serial(serial)
    except ValueError as exc:
        raise CodeError(str(exc)) from None
    return RequestCode(pid, serial, nonce)


# --- Authorization codes (SLR / PLR) -------------------------------------------------------

ReservationType = Literal["SPECIFIC", "PERMANENT"]
LicenseType = Literal["PERPETUAL", "TERM"]
_FLAGS: dict[str, ReservationType] = {"A": "SPECIFIC", "P": "PERMANENT"}
AUTH_CODE_VERSION = "C"
AUTH_DAMAGED = (
    "The authorization code is damaged or is not an authorization code. "
    "Copy the whole code from the Smart Software Manager."
)
AUTH_FORGED = "The authorization code has been modified or was not generated by this Smart Software Manager."
AUTH_WRONG_REQUEST = "The Reservation Authorization Code does not match the Reservation Request Code"
AUTH_WRONG_UDI = "The authorization code was generated for a different product instance."
_MAX_CODE_CHARS = 200_000
_AUTH_RE = re.compile(
    r"<specificPLR>(?P<auth><authorizationCode>.*</authorizationCode>)"
    r"<signature>(?P<sig>[A-Za-z0-9+/=]+)</signature>"
    r"(?P<udi_el><udi>(?P<udi>[^<]*)</udi>)</specificPLR>",
    re.DOTALL,
)


@dataclass(frozen=True)
class Entitlement:
    tag: str
    count: int
    start_date: date
    end_date: date | None = None  # None for PERPETUAL
    license_type: LicenseType = "PERPETUAL"
    display_name: str = ""
    tag_description: str = ""
    subscription_id: str = ""


@dataclass(frozen=True)
class AuthorizationCode:
    flag: str
    version: str
    piid: str
    timestamp: datetime
    request_code: str
    entitlements: tuple[Entitlement, ...]
    udi: str
    signature: str
    code: str  # the normalized text that was parsed

    @property
    def reservation_type(self) -> ReservationType:
        return _FLAGS[self.flag]

    @property
    def is_permanent(self) -> bool:
        return self.reservation_type == "PERMANENT"


# Characters XML 1.0 cannot carry (or, for CR, silently turns into LF).
_NOT_XML_SAFE = re.compile("[^\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _el(name: str, value: str) -> str:
    if _NOT_XML_SAFE.search(value):
        raise ValueError(f"The {name} value contains characters that cannot be put in an authorization code.")
    return f"<{name}>{escape(value)}</{name}>"


def _entitlement_xml(e: Entitlement) -> str:
    if e.count < 1:
        raise ValueError("An entitlement must reserve at least one license.")
    if (e.license_type == "TERM") != (e.end_date is not None):
        raise ValueError("TERM entitlements need an end date and PERPETUAL ones must not have one.")
    return (
        "<entitlement>"
        + _el("tag", e.tag)
        + _el("count", str(e.count))
        + _el("startDate", e.start_date.isoformat())
        + _el("endDate", e.end_date.isoformat() if e.end_date else "")
        + _el("licenseType", e.license_type)
        + _el("displayName", e.display_name)
        + _el("tagDescription", e.tag_description)
        + _el("subscriptionID", e.subscription_id)
        + "</entitlement>"
    )


def _signed_bytes(auth_xml: str, udi_xml: str) -> bytes:
    return (auth_xml + udi_xml).encode("utf-8")


def authorization_code_generate(
    *,
    ca: CertificateAuthority,
    request_code: str,
    udi: str,
    piid: str,
    entitlements: list[Entitlement] | tuple[Entitlement, ...],
    now: datetime,
    reservation_type: ReservationType = "SPECIFIC",
) -> str:
    """The signed ``<specificPLR>`` XML the CSSM wizard shows in its last step."""
    flag = {v: k for k, v in _FLAGS.items()}.get(reservation_type)
    if flag is None:
        raise ValueError("reservation_type must be SPECIFIC or PERMANENT")
    if reservation_type == "SPECIFIC" and not entitlements:
        raise ValueError("A specific license reservation needs at least one entitlement.")
    ms = int(_aware(now).timestamp() * 1000)
    auth_xml = (
        "<authorizationCode>"
        + _el("flag", flag)
        + _el("version", AUTH_CODE_VERSION)
        + _el("piid", piid)
        + _el("timestamp", str(ms))
        + _el("requestCode", request_code)
        + "<entitlements>"
        + "".join(_entitlement_xml(e) for e in entitlements)
        + "</entitlements></authorizationCode>"
    )
    udi_xml = _el("udi", udi)
    signature = base64.b64encode(sign_with_ca(ca=ca, data=_signed_bytes(auth_xml, udi_xml))).decode("ascii")
    return f"<specificPLR>{auth_xml}<signature>{signature}</signature>{udi_xml}</specificPLR>"


def _text(parent: ElementTree.Element, name: str) -> str:
    child = parent.find(name)
    if child is None:
        raise ValueError(f"missing {name}")
    return child.text or ""


def _parse_entitlement(el: ElementTree.Element) -> Entitlement:
    license_type = _text(el, "licenseType")
    if license_type not in ("PERPETUAL", "TERM"):
        raise ValueError("bad licenseType")
    end = _text(el, "endDate")
    return Entitlement(
        tag=_text(el, "tag"),
        count=int(_text(el, "count")),
        start_date=date.fromisoformat(_text(el, "startDate")),
        end_date=date.fromisoformat(end) if end else None,
        license_type=license_type,  # type: ignore[arg-type]
        display_name=_text(el, "displayName"),
        tag_description=_text(el, "tagDescription"),
        subscription_id=_text(el, "subscriptionID"),
    )


def authorization_code_parse(
    code: str,
    *,
    ca_cert_pem: bytes,
    expected_request_code: str | None = None,
    expected_udi: str | None = None,
) -> AuthorizationCode:
    """Check an authorization code's shape, signature and target device."""
    text = code.strip()
    # "<!" would allow DOCTYPE/entity tricks; real codes never contain it.
    if not text or len(text) > _MAX_CODE_CHARS or "<!" in text:
        raise CodeError(AUTH_DAMAGED)
    match = _AUTH_RE.fullmatch(text)
    if not match:
        raise CodeError(AUTH_DAMAGED)
    try:
        signature = _strict_b64decode(match["sig"])
    except (binascii.Error, ValueError):
        raise CodeError(AUTH_FORGED) from None
    try:
        genuine = verify_with_ca(
            ca_cert_pem=ca_cert_pem,
            data=_signed_bytes(match["auth"], match["udi_el"]),
            signature=signature,
        )
    except PkiError as exc:
        raise CodeError(exc.reason) from None
    if not genuine:
        raise CodeError(AUTH_FORGED)
    # Safe to hand to expat: the text is signed by our CA and "<!" (DOCTYPE,
    # entity declarations) was refused above.
    try:
        root = ElementTree.fromstring(match["auth"])  # noqa: S314
        udi_text = ElementTree.fromstring(match["udi_el"]).text or ""  # noqa: S314
        flag = _text(root, "flag")
        entitlements_el = root.find("entitlements")
        if flag not in _FLAGS or entitlements_el is None:
            raise ValueError("bad flag or entitlements")
        parsed = AuthorizationCode(
            flag=flag,
            version=_text(root, "version"),
            piid=_text(root, "piid"),
            timestamp=datetime.fromtimestamp(int(_text(root, "timestamp")) / 1000, tz=UTC),
            request_code=_text(root, "requestCode"),
            entitlements=tuple(_parse_entitlement(e) for e in entitlements_el.findall("entitlement")),
            udi=udi_text,
            signature=match["sig"],
            code=text,
        )
    except (ElementTree.ParseError, ValueError):
        # Signed by us yet unreadable: only possible with a generator bug.
        raise CodeError(AUTH_DAMAGED) from None
    if expected_request_code is not None and "".join(expected_request_code.split()) != parsed.request_code:
        raise CodeError(AUTH_WRONG_REQUEST)
    if expected_udi is not None and expected_udi != parsed.udi:
        raise CodeError(AUTH_WRONG_UDI)
    return parsed


def plr_code_display(auth_code: str) -> str:
    """Short ``ABC123-…`` (6×6) fingerprint of a PLR code, like FTD's Universal PLR code."""
    digest = hashlib.sha256("".join(auth_code.split()).encode("utf-8")).digest()
    chars = _b62(digest, 36).upper()
    return "-".join(chars[i : i + 6] for i in range(0, 36, 6))


# --- Confirmation codes ----------------------------------------------------------------------

_CONFIRMATION_RE = re.compile(r"[0-9a-f]{8}")


def confirmation_code(auth_code: str) -> str:
    """8 hex characters the device shows after Reauthorize; entered in CSSM."""
    return hashlib.sha256("".join(auth_code.split()).encode("utf-8")).hexdigest()[:8]


def confirmation_code_verify(code: str, *, auth_code: str) -> None:
    text = code.strip().lower()
    if not _CONFIRMATION_RE.fullmatch(text):
        raise CodeError("The confirmation code must be 8 characters: digits 0-9 and letters a-f.")
    if not hmac.compare_digest(text, confirmation_code(auth_code)):
        raise CodeError("The confirmation code does not match the authorization code installed on the product.")


# --- Return codes ------------------------------------------------------------------------------

_RETURN_RE = re.compile(r"[0-9A-Za-z]{6}(?:-[0-9A-Za-z]{6}){7}-[0-9A-Za-z]{3}")
_SALT_LEN = 12
_MAC_LEN = 39  # 8*6 + 3 = 51 characters in all
RETURN_DAMAGED = "The return code is damaged. It must be nine groups of letters and digits separated by dashes."
RETURN_MISMATCH = "The return code does not match this product instance."


def _return_mac(secret: bytes, piid: str, udi: str, salt: str) -> str:
    msg = f"return|{piid}|{udi}|{salt}".encode()
    return _b62(hmac.new(secret, msg, hashlib.sha256).digest(), _MAC_LEN)


def return_code_generate(*, secret: bytes, piid: str, udi: str, nonce: str | None = None) -> str:
    """Return code the device prints; a nonce makes each return distinct."""
    # A given nonce is hashed so any string works and the salt stays base62.
    salt = _random_b62(_SALT_LEN) if nonce is None else _b62(hashlib.sha256(nonce.encode()).digest(), _SALT_LEN)
    chars = salt + _return_mac(secret, piid, udi, salt)
    groups = [chars[i : i + 6] for i in range(0, 48, 6)] + [chars[48:]]
    return "-".join(groups)


def return_code_verify(code: str, *, secret: bytes, piid: str, udi: str) -> None:
    """CSSM *Remove* dialog check ("must pass the validation check")."""
    text = "".join(code.split())
    if not _RETURN_RE.fullmatch(text):
        raise CodeError(RETURN_DAMAGED)
    chars = text.replace("-", "")
    salt, mac = chars[:_SALT_LEN], chars[_SALT_LEN:]
    if not hmac.compare_digest(mac, _return_mac(secret, piid, udi, salt)):
        raise CodeError(RETURN_MISMATCH)

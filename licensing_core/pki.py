"""Real X.509 for the Smart Agent identity (ECDSA P-256, SHA-256).

The CSSM simulator is a small CA: on registration it signs the gateway's CSR
into a one-year ID certificate (§1.3 R2), and after that every agent request
is signed with the device key and checked against that certificate (§6.1
"application-level signing"). Keys and certificates travel as PEM bytes so
models can store them in plain fields.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .schedules import ID_CERT_VALIDITY

CA_VALIDITY = timedelta(days=3650)
_HASH = hashes.SHA256()
_SIGALG = ec.ECDSA(_HASH)


class PkiError(Exception):
    """A key, CSR, certificate or signature was refused; ``reason`` is for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CertificateAuthority:
    key_pem: bytes
    cert_pem: bytes


@dataclass(frozen=True)
class CertInfo:
    common_name: str  # product instance name (hostname)
    udi: str  # PID:<pid>,SN:<serial>
    not_before: datetime
    not_after: datetime
    serial: int


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")


def _load_key(key_pem: bytes) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise PkiError("The private key is damaged or is not a PEM private key.") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError("The private key is not an elliptic-curve key.")
    return key


def _load_cert(cert_pem: bytes, what: str = "ID certificate") -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise PkiError(f"The {what} is damaged or is not a PEM certificate.") from exc


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name_attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    attrs = name.get_attributes_for_oid(oid)
    return str(attrs[0].value) if attrs else ""


def make_ca(*, common_name: str, now: datetime) -> CertificateAuthority:
    """A self-signed CA valid for 10 years from ``now`` (one per simulated CSSM)."""
    _require_aware(now)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Smart Licensing Lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, _HASH)
    )
    return CertificateAuthority(key_pem=_key_pem(key), cert_pem=cert.public_bytes(serialization.Encoding.PEM))


def make_device_key() -> bytes:
    """A fresh P-256 private key (PEM, unencrypted) for one appliance."""
    return _key_pem(ec.generate_private_key(ec.SECP256R1()))


def make_csr(*, key_pem: bytes, common_name: str, udi: str) -> bytes:
    """CSR with CN = product instance name and subject serialNumber = UDI."""
    key = _load_key(key_pem)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, udi),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, _HASH)
    return csr.public_bytes(serialization.Encoding.PEM)


def issue_id_certificate(
    *,
    ca: CertificateAuthority,
    csr_pem: bytes,
    now: datetime,
    validity: timedelta = ID_CERT_VALIDITY,
    serial: int | None = None,
) -> bytes:
    """Sign a device CSR into an ID certificate valid from ``now`` for ``validity``."""
    _require_aware(now)
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise PkiError("The certificate signing request is damaged or is not a PEM request.") from exc
    if not csr.is_signature_valid:
        raise PkiError("The certificate signing request signature is not valid.")
    if not isinstance(csr.public_key(), ec.EllipticCurvePublicKey):
        raise PkiError("The certificate signing request must use an elliptic-curve key.")
    if not _name_attr(csr.subject, NameOID.COMMON_NAME):
        raise PkiError("The certificate signing request has no product instance name.")
    if not _name_attr(csr.subject, NameOID.SERIAL_NUMBER):
        raise PkiError("The certificate signing request has no UDI.")
    ca_key = _load_key(ca.key_pem)
    ca_cert = _load_cert(ca.cert_pem, "certificate authority")
    cert = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_cert.subject)
        .public_key(csr.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, _HASH)
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def verify_certificate(*, ca_cert_pem: bytes, cert_pem: bytes, now: datetime) -> CertInfo:
    """Check an ID certificate was issued by this CA and is valid at ``now``."""
    _require_aware(now)
    info = _issued_by(bytes(ca_cert_pem), bytes(cert_pem))
    if now < info.not_before:
        raise PkiError("The ID certificate is not yet valid. Check that the appliance clock is correct.")
    if now > info.not_after:
        raise PkiError("The ID certificate has expired.")
    return info


@lru_cache(maxsize=16384)
def _issued_by(ca_cert_pem: bytes, cert_pem: bytes) -> CertInfo:
    """The certificate's fields once its CA signature is checked. Both texts are
    immutable, so a successful check holds for good: a fleet's renewals verify
    each instance's certificate once per process, not once per message (a
    refusal raises and is not remembered)."""
    ca_cert = _load_cert(ca_cert_pem, "certificate authority")
    cert = _load_cert(cert_pem)
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise PkiError("The ID certificate was not issued by this Smart Software Manager.") from exc
    return CertInfo(
        common_name=_name_attr(cert.subject, NameOID.COMMON_NAME),
        udi=_name_attr(cert.subject, NameOID.SERIAL_NUMBER),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial=cert.serial_number,
    )


def cert_info(cert_pem: bytes) -> CertInfo:
    """Read the fields of a certificate without checking who issued it."""
    cert = _load_cert(cert_pem)
    return CertInfo(
        common_name=_name_attr(cert.subject, NameOID.COMMON_NAME),
        udi=_name_attr(cert.subject, NameOID.SERIAL_NUMBER),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial=cert.serial_number,
    )


def sign(*, key_pem: bytes, data: bytes) -> str:
    """Base64 ECDSA-SHA256 signature of ``data`` (one per agent request)."""
    return base64.b64encode(_load_key(key_pem).sign(data, _SIGALG)).decode("ascii")


def verify_signature(*, cert_pem: bytes, data: bytes, signature: str) -> None:
    """Raise PkiError unless ``signature`` is the certificate key's signature of ``data``."""
    public_key = _load_cert(cert_pem).public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise PkiError("The ID certificate does not hold an elliptic-curve key.")
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PkiError("The request signature is damaged.") from exc
    # Reject non-canonical base64 (unused trailing bits) so one text maps to one signature.
    if base64.b64encode(raw).decode("ascii") != signature.strip():
        raise PkiError("The request signature is damaged.")
    try:
        public_key.verify(raw, data, _SIGALG)
    except InvalidSignature as exc:
        raise PkiError("The request signature does not match the ID certificate.") from exc


def verify_with_ca(*, ca_cert_pem: bytes, data: bytes, signature: bytes) -> bool:
    """True if the CA key signed ``data`` (raw DER signature); used by codes.py."""
    public_key = _load_cert(ca_cert_pem, "certificate authority").public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        return False
    try:
        public_key.verify(signature, data, _SIGALG)
    except InvalidSignature:
        return False
    return True


def sign_with_ca(*, ca: CertificateAuthority, data: bytes) -> bytes:
    """Raw DER ECDSA signature by the CA key (authorization codes)."""
    return _load_key(ca.key_pem).sign(data, _SIGALG)


def new_serial() -> int:
    return secrets.randbits(63) + 1

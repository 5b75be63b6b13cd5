"""ID certificates and request signing with real X.509 (ECDSA P-256)."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from licensing_core.pki import (
    CA_VALIDITY,
    CertificateAuthority,
    PkiError,
    cert_info,
    issue_id_certificate,
    make_ca,
    make_csr,
    make_device_key,
    new_serial,
    sign,
    verify_certificate,
    verify_signature,
)
from licensing_core.schedules import ID_CERT_VALIDITY

NOW = datetime(2018, 8, 22, 7, 21, tzinfo=UTC)
UDI = "PID:C395,SN:FCH2216V0AB"
CA = make_ca(common_name="Smart Software Manager (lab one)", now=NOW)
OTHER_CA = make_ca(common_name="Smart Software Manager (lab two)", now=NOW)
DEVICE_KEY = make_device_key()
CSR = make_csr(key_pem=DEVICE_KEY, common_name="esa01.lab.example", udi=UDI)
CERT = issue_id_certificate(ca=CA, csr_pem=CSR, now=NOW)


def test_ca_is_a_ten_year_self_signed_p256_ca():
    ca = x509.load_pem_x509_certificate(CA.cert_pem)
    assert ca.issuer == ca.subject
    assert ca.not_valid_after_utc - NOW == CA_VALIDITY
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.public_key().curve.name == "secp256r1"
    assert isinstance(ca.signature_hash_algorithm, hashes.SHA256)


def test_issued_certificate_verifies_against_its_ca():
    info = verify_certificate(ca_cert_pem=CA.cert_pem, cert_pem=CERT, now=NOW + timedelta(days=100))
    assert info.common_name == "esa01.lab.example"
    assert info.udi == UDI
    assert info.not_before == NOW
    assert info.not_after == NOW + ID_CERT_VALIDITY  # "Registration Expires on" = +365 d
    assert info == cert_info(CERT)


def test_certificate_from_another_lab_is_refused():
    with pytest.raises(PkiError) as info:
        verify_certificate(ca_cert_pem=OTHER_CA.cert_pem, cert_pem=CERT, now=NOW)
    assert info.value.reason == "The ID certificate was not issued by this Smart Software Manager."


def test_expired_certificate_is_refused():
    verify_certificate(ca_cert_pem=CA.cert_pem, cert_pem=CERT, now=NOW + ID_CERT_VALIDITY)  # last valid moment
    with pytest.raises(PkiError) as info:
        verify_certificate(ca_cert_pem=CA.cert_pem, cert_pem=CERT, now=NOW + ID_CERT_VALIDITY + timedelta(seconds=1))
    assert info.value.reason == "The ID certificate has expired."


def test_not_yet_valid_certificate_is_refused():
    with pytest.raises(PkiError, match="not yet valid"):
        verify_certificate(ca_cert_pem=CA.cert_pem, cert_pem=CERT, now=NOW - timedelta(seconds=1))


def test_custom_validity_and_serial():
    cert = issue_id_certificate(ca=CA, csr_pem=CSR, now=NOW, validity=timedelta(days=1), serial=4242)
    info = verify_certificate(ca_cert_pem=CA.cert_pem, cert_pem=cert, now=NOW)
    assert info.serial == 4242
    assert info.not_after == NOW + timedelta(days=1)
    assert new_serial() > 0


@pytest.mark.parametrize("bad", [b"", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_malformed_certificates_are_refused(bad):
    with pytest.raises(PkiError, match="damaged"):
        verify_certificate(ca_cert_pem=CA.cert_pem, cert_pem=bad, now=NOW)
    with pytest.raises(PkiError, match="certificate authority is damaged"):
        verify_certificate(ca_cert_pem=bad, cert_pem=CERT, now=NOW)


def test_tampered_certificate_is_refused():
    der = x509.load_pem_x509_certificate(CERT).public_bytes(serialization.Encoding.DER)
    tampered_der = der.replace(b"esa01.lab.example", b"esa02.lab.example")
    tampered = x509.load_der_x509_certificate(tampered_der).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(PkiError, match="not issued by this Smart Software Manager"):
        verify_certificate(ca_cert_pem=CA.cert_pem, cert_pem=tampered, now=NOW)


# --- CSRs --------------------------------------------------------------------------------------


def test_csr_carries_hostname_and_udi():
    csr = x509.load_pem_x509_csr(CSR)
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "esa01.lab.example"
    assert csr.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == UDI
    assert csr.is_signature_valid


def test_tampered_csr_is_refused():
    der = x509.load_pem_x509_csr(CSR).public_bytes(serialization.Encoding.DER)
    tampered = x509.load_der_x509_csr(der.replace(b"esa01", b"esa02")).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(PkiError) as info:
        issue_id_certificate(ca=CA, csr_pem=tampered, now=NOW)
    assert info.value.reason == "The certificate signing request signature is not valid."


@pytest.mark.parametrize("bad", [b"", b"not a csr", CERT])
def test_malformed_csr_is_refused(bad):
    with pytest.raises(PkiError, match="damaged or is not a PEM request"):
        issue_id_certificate(ca=CA, csr_pem=bad, now=NOW)


def _csr(key, attrs):
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )


def test_csr_without_hostname_or_udi_is_refused():
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(PkiError, match="no UDI"):
        issue_id_certificate(ca=CA, csr_pem=_csr(key, [(NameOID.COMMON_NAME, "esa")]), now=NOW)
    with pytest.raises(PkiError, match="no product instance name"):
        issue_id_certificate(ca=CA, csr_pem=_csr(key, [(NameOID.SERIAL_NUMBER, UDI)]), now=NOW)


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PEM = RSA_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)


def test_rsa_keys_are_refused():
    with pytest.raises(PkiError, match="elliptic-curve"):
        make_csr(key_pem=RSA_PEM, common_name="esa", udi=UDI)
    rsa_csr = _csr(RSA_KEY, [(NameOID.COMMON_NAME, "esa"), (NameOID.SERIAL_NUMBER, UDI)])
    with pytest.raises(PkiError, match="elliptic-curve"):
        issue_id_certificate(ca=CA, csr_pem=rsa_csr, now=NOW)


def test_unreadable_private_key_is_refused():
    with pytest.raises(PkiError, match="private key is damaged"):
        make_csr(key_pem=b"garbage", common_name="esa", udi=UDI)
    broken_ca = CertificateAuthority(key_pem=b"garbage", cert_pem=CA.cert_pem)
    with pytest.raises(PkiError, match="private key is damaged"):
        issue_id_certificate(ca=broken_ca, csr_pem=CSR, now=NOW)


def test_naive_now_is_a_programming_error():
    with pytest.raises(ValueError):
        make_ca(common_name="x", now=datetime(2018, 1, 1))
    with pytest.raises(ValueError):
        issue_id_certificate(ca=CA, csr_pem=CSR, now=datetime(2018, 1, 1))
    with pytest.raises(ValueError):
        verify_certificate(ca_cert_pem=CA.cert_pem, cert_pem=CERT, now=datetime(2018, 1, 1))


# --- request signatures ------------------------------------------------------------------------

BODY = b'{"action":"renew_auth","udi":"PID:C395,SN:FCH2216V0AB"}'


def test_signature_verifies_with_the_id_certificate():
    signature = sign(key_pem=DEVICE_KEY, data=BODY)
    base64.b64decode(signature, validate=True)
    verify_signature(cert_pem=CERT, data=BODY, signature=signature)


def test_signature_over_tampered_data_is_refused():
    signature = sign(key_pem=DEVICE_KEY, data=BODY)
    with pytest.raises(PkiError, match="does not match the ID certificate"):
        verify_signature(cert_pem=CERT, data=BODY.replace(b"renew_auth", b"renew_id!!"), signature=signature)


def test_signature_by_another_key_is_refused():
    signature = sign(key_pem=make_device_key(), data=BODY)
    with pytest.raises(PkiError, match="does not match the ID certificate"):
        verify_signature(cert_pem=CERT, data=BODY, signature=signature)


def test_every_single_character_change_to_a_signature_is_refused():
    signature = sign(key_pem=DEVICE_KEY, data=BODY)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    for index, ch in enumerate(signature):
        replacement = alphabet[(alphabet.index(ch) + 1) % 64] if ch in alphabet else "A"
        with pytest.raises(PkiError):
            verify_signature(
                cert_pem=CERT, data=BODY, signature=signature[:index] + replacement + signature[index + 1 :]
            )


@pytest.mark.parametrize("signature", ["", "!!!!", "AAA", "AB=="])  # "AB==" is non-canonical "AA=="
def test_damaged_signature_is_refused(signature):
    with pytest.raises(PkiError):
        verify_signature(cert_pem=CERT, data=BODY, signature=signature)


def test_signature_check_needs_an_ec_certificate():
    rsa_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsa")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsa")]))
        .public_key(RSA_KEY.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .sign(RSA_KEY, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    with pytest.raises(PkiError, match="elliptic-curve"):
        verify_signature(cert_pem=rsa_cert, data=BODY, signature=sign(key_pem=DEVICE_KEY, data=BODY))
    from licensing_core.pki import verify_with_ca

    assert verify_with_ca(ca_cert_pem=rsa_cert, data=BODY, signature=b"x") is False


def test_a_remembered_check_is_for_its_ca_only_and_validity_is_checked_every_time():
    # The chain check is remembered per (CA, certificate) text; the dates are not.
    verify_certificate(ca_cert_pem=CA.cert_pem, cert_pem=CERT, now=NOW)
    with pytest.raises(PkiError, match="not issued by this"):
        verify_certificate(ca_cert_pem=OTHER_CA.cert_pem, cert_pem=CERT, now=NOW)
    with pytest.raises(PkiError, match="expired"):
        verify_certificate(ca_cert_pem=CA.cert_pem, cert_pem=CERT, now=NOW + ID_CERT_VALIDITY + timedelta(days=1))
    assert verify_certificate(ca_cert_pem=memoryview(CA.cert_pem), cert_pem=CERT, now=NOW).udi == UDI

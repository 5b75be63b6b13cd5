"""The lab's certificate authority and signing secrets."""

import secrets

from django.db import IntegrityError, transaction

from licensing_core import pki
from licensing_core.models import Lab, LabTrust


def lab_trust(*, lab: Lab, now) -> LabTrust:
    """The lab's trust material, created on first use (race-safe). A lab read
    with select_related("trust") costs no query here (the Smart Agent endpoint)."""
    try:
        return lab.trust
    except LabTrust.DoesNotExist:
        pass
    ca = pki.make_ca(common_name=f"Smart Software Manager CA ({lab.slug})", now=now)
    try:
        with transaction.atomic():
            trust = LabTrust.objects.create(
                lab=lab,
                ca_key_pem=ca.key_pem,
                ca_cert_pem=ca.cert_pem,
                token_secret=secrets.token_bytes(32),
                return_code_secret=secrets.token_bytes(32),
            )
    except IntegrityError:  # another process created it first
        trust = LabTrust.objects.get(lab=lab)
    lab.trust = trust
    return trust


def certificate_authority(trust: LabTrust) -> pki.CertificateAuthority:
    return pki.CertificateAuthority(key_pem=bytes(trust.ca_key_pem), cert_pem=bytes(trust.ca_cert_pem))

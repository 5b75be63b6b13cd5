"""Feature-licence catalogue, appliance models and identity helpers.

Pure data (domain-notes §4, §6.3). Nothing here touches the database: the
catalogue is fixed by the product, so it lives in code and the entitlement
tags stay stable across fixtures, migrations and generated codes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Product = Literal["ESA", "SMA"]
PRODUCTS: tuple[Product, ...] = ("ESA", "SMA")


@dataclass(frozen=True)
class License:
    """One row of the gateway *Licenses* page (§4.1 / §4.2)."""

    code: str  # checkbox id on the Licenses page, e.g. "imh", "VOF"
    name: str  # display name (legacy naming, §9 Q14)
    product: Product
    entitlement_tag: str  # regid.2017-05.com.cisco.<P>_<code>,1.0_<uuid>
    sku: str  # CSSM "License SKU" column, e.g. "ESA-AMP-LIC="
    is_base: bool = False  # product base licence: requested by default, never released
    # Export-controlled functionality: authorized only for products registered with a token
    # that allows it (cssm_portal.restricted). INFERRED: the sources name no restricted ESA/SMA
    # licence; encryption is what the Cisco export-control flag governs (domain-notes §5.2 token
    # checkbox, §6.2 register answer), so PXE Encryption is the one marked.
    export_restricted: bool = False


def _tag(product: str, code: str, uuid: str) -> str:
    # Fixed UUIDs (uuid5 of the code, computed once and pasted) keep tags stable.
    return f"regid.2017-05.com.cisco.{product}_{code},1.0_{uuid}"


def _esa(code: str, name: str, sku: str, uuid: str, *, base: bool = False, restricted: bool = False) -> License:
    return License(code, name, "ESA", _tag("ESA", code, uuid), sku, base, restricted)


def _sma(code: str, name: str, sku: str, uuid: str, *, base: bool = False) -> License:
    return License(code, name, "SMA", _tag("SMA", code, uuid), sku, base)


# Page order of §4.1; Cloudmark (row 6) is left out as recommended.
ESA_LICENSES: tuple[License, ...] = (
    _esa("imh", "Mail Handling", "ESA-IMH-LIC=", "f214955f-32e4-524d-989a-d1d32ce03e72", base=True),
    _esa(
        "bounce_verification",
        "Email Security Appliance Bounce Verification",
        "ESA-BV-LIC=",
        "5da427b3-8134-5311-8dba-72ac24eb6ae4",
        base=True,
    ),
    _esa(
        "case",
        "Email Security Appliance Anti-Spam License",
        "ESA-ASP-LIC=",
        "1a75a96f-de9c-5924-9b45-31bcf7abf36a",
    ),
    _esa(
        "VOF",
        "Email Security Appliance Outbreak Filters",
        "ESA-OF-LIC=",
        "c6a382ff-4128-59d5-86cf-c746a38d7783",
    ),
    _esa(
        "rsadlp",
        "Email Security Appliance Data Loss Prevention",
        "ESA-DLP-LIC=",
        "b825acaf-1145-5ff3-a13f-c7dde30fe3c6",
    ),
    _esa(
        "amp_file_rep",
        "Email Security Appliance Advanced Malware Protection Reputation",
        "ESA-AMPR-LIC=",
        "f1e2895f-161b-5257-97fc-ae7a751f51bd",
    ),
    _esa(
        "amp_file_analysis",
        "Email Security Appliance Advanced Malware Protection",
        "ESA-AMP-LIC=",
        "1b2d4f92-02e9-5f9d-ada9-b81d55909261",
    ),
    _esa(
        "sophos",
        "Email Security Appliance Sophos Anti-Malware",
        "ESA-ESO-LIC=",
        "031c0dcb-3ec1-5de9-b30c-c8b03e58c568",
    ),
    _esa(
        "mcafee",
        "Email Security Appliance McAfee Anti-Malware",
        "ESA-EMA-LIC=",
        "aa6b5930-1e62-52c6-af3f-a174e39545ef",
    ),
    _esa(
        "envelope_encryption",
        "Email Security Appliance PXE Encryption",
        "ESA-PXE-LIC=",
        "4c4cd4e7-48db-5864-b990-f4b8dd7f68e9",
        restricted=True,
    ),
    _esa(
        "ims",
        "Email Security Appliance Intelligent Multi-Scan",
        "ESA-IMS-LIC=",
        "f320b9a1-19c0-5e21-8d7c-3a179566d636",
    ),
    _esa(
        "iia",
        "Email Security Appliance Image Analyzer",
        "ESA-IIA-LIC=",
        "83cab0ff-ee6b-5ceb-9fa5-e4b56ff4ced3",
    ),
    _esa(
        "ETF",
        "Email Security Appliance External Threat Feeds",
        "ESA-ETF-LIC=",
        "d46549ce-722a-5073-a6a8-468f27104e2b",
    ),
    _esa(
        "gm_unsubscription",
        "Email Security Appliance Graymail Safe-unsubscribe",
        "ESA-GSU-LIC=",
        "7b3e01af-c80c-5e89-9b6f-e4ce47486540",
    ),
)

SMA_LICENSES: tuple[License, ...] = (
    _sma("imh", "Mail Handling", "SMA-IMH-LIC=", "961155fc-bd84-5f9b-9071-2b56f59352b3", base=True),
    _sma(
        "iccm_processing",
        "Content Security Management Config Manager",
        "SMA-WCM-LIC=",
        "06e22b8e-4608-506d-9839-10a7e0e91d08",
    ),
    _sma(
        "c_web_rep_processing",
        "Content Security Management Web Reporting",
        "SMA-WRPT-LIC=",
        "6ade3b9b-e7a6-5e59-82d2-f4bff66fe68e",
    ),
    _sma(
        "master_isq",
        "Content Security Management Master ISQ",
        "SMA-ISQ-LIC=",
        "b41cb7dd-e11c-51f7-b3d4-beec4df01024",
    ),
    _sma(
        "c_track_processing",
        "Content Security Management Centralized Tracking",
        "SMA-TRK-LIC=",
        "2f6ec1ba-3423-5b87-b8ef-73e60fa8239b",
    ),
    _sma(
        "c_rep_processing",
        "Content Security Management Centralized Reporting",
        "SMA-RPT-LIC=",
        "4f398ccf-89b4-52bb-9f68-499d7277ac91",
    ),
)

_BY_PRODUCT: dict[str, tuple[License, ...]] = {"ESA": ESA_LICENSES, "SMA": SMA_LICENSES}
_BY_TAG: dict[str, License] = {lic.entitlement_tag: lic for lic in ESA_LICENSES + SMA_LICENSES}


def licenses_for(product: str) -> tuple[License, ...]:
    """All licences of a product, in *Licenses* page order."""
    try:
        return _BY_PRODUCT[product]
    except KeyError:
        raise KeyError(f"Unknown product {product!r}; expected ESA or SMA.") from None


def license_by_code(product: str, code: str) -> License:
    for lic in licenses_for(product):
        if lic.code == code:
            return lic
    raise KeyError(f"No {product} licence with code {code!r}.")


def license_by_tag(tag: str) -> License:
    try:
        return _BY_TAG[tag]
    except KeyError:
        raise KeyError(f"Unknown entitlement tag {tag!r}.") from None


def base_licenses(product: str) -> tuple[License, ...]:
    return tuple(lic for lic in licenses_for(product) if lic.is_base)


# --- Appliance models -------------------------------------------------------


@dataclass(frozen=True)
class ApplianceModel:
    pid: str
    product: Product
    virtual: bool
    description: str


MODELS: tuple[ApplianceModel, ...] = (
    ApplianceModel("C195", "ESA", False, "Cisco Secure Email Gateway C195"),
    ApplianceModel("C395", "ESA", False, "Cisco Secure Email Gateway C395"),
    ApplianceModel("C695", "ESA", False, "Cisco Secure Email Gateway C695"),
    ApplianceModel("C100V", "ESA", True, "Cisco Secure Email Gateway Virtual C100V"),
    ApplianceModel("C300V", "ESA", True, "Cisco Secure Email Gateway Virtual C300V"),
    ApplianceModel("C600V", "ESA", True, "Cisco Secure Email Gateway Virtual C600V"),
    ApplianceModel("M195", "SMA", False, "Cisco Secure Email and Web Manager M195"),
    ApplianceModel("M395", "SMA", False, "Cisco Secure Email and Web Manager M395"),
    ApplianceModel("M695", "SMA", False, "Cisco Secure Email and Web Manager M695"),
    ApplianceModel("M100V", "SMA", True, "Cisco Secure Email and Web Manager Virtual M100V"),
    ApplianceModel("M300V", "SMA", True, "Cisco Secure Email and Web Manager Virtual M300V"),
    ApplianceModel("M600V", "SMA", True, "Cisco Secure Email and Web Manager Virtual M600V"),
)
_MODEL_BY_PID = {m.pid: m for m in MODELS}


def model_by_pid(pid: str) -> ApplianceModel:
    try:
        return _MODEL_BY_PID[pid]
    except KeyError:
        raise KeyError(f"Unknown appliance model {pid!r}.") from None


# --- UDI (§6.3): PID:<pid>,SN:<serial> ----------------------------------------

# PIDs may contain dashes (C9300-24UX); neither part may contain ":" or ",".
_PID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SERIAL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_UDI_RE = re.compile(r"PID:(?P<pid>[^,]*),SN:(?P<serial>.*)")


def check_pid(pid: str) -> None:
    if not _PID_RE.fullmatch(pid):
        raise ValueError("The product ID may contain only letters, digits, dots, dashes and underscores.")


def check_serial(serial: str) -> None:
    if not _SERIAL_RE.fullmatch(serial):
        raise ValueError("The serial number may contain only letters, digits, dots, dashes and underscores.")


def make_udi(pid: str, serial: str) -> str:
    check_pid(pid)
    check_serial(serial)
    return f"PID:{pid},SN:{serial}"


def parse_udi(udi: str) -> tuple[str, str]:
    """Split ``PID:<pid>,SN:<serial>``; ValueError says what is wrong."""
    m = _UDI_RE.fullmatch(udi.strip())
    if not m:
        raise ValueError("The UDI must look like PID:<product ID>,SN:<serial number>.")
    pid, serial = m["pid"], m["serial"]
    if not pid:
        raise ValueError("The UDI has no product ID.")
    if not serial:
        raise ValueError("The UDI has no serial number.")
    check_pid(pid)
    check_serial(serial)
    return pid, serial


# --- Smart Account names (guide note on Talos certificate fetch) -------------

# Supported characters listed in the guide: - a-z A-Z 0-9 _ , . @ : & " ' / ; # ? ö ü Ã , ()
# plus the space that separates words in real account names.
SMART_ACCOUNT_NAME_ALLOWED: frozenset[str] = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_,.@:&\"'/;#?öüÃ() "
)


def smart_account_name_problems(name: str) -> list[str]:
    """Readable problems with a Smart Account name; empty list means it is fine."""
    if not name.strip():
        return ["The Smart Account name cannot be empty."]
    bad = sorted({ch for ch in name if ch not in SMART_ACCOUNT_NAME_ALLOWED}, key=name.index)
    return [
        f"The character “{ch}” is not supported in a Smart Account name; "
        "the email gateway could not fetch the Cisco Talos certificate."
        for ch in bad
    ]

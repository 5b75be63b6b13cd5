"""``saveconfig``: the appliance configuration as an XML file, without Smart Software Licensing.

The guide says saveconfig and the Configuration Summary do not save the Smart
Licensing configuration (domain-notes §2.1, §3.5), and loading a saved file does not
change registration or licence states. So the file holds what this lab simulates
outside licensing (host name, the Service Updates proxy, alert recipients) and none
of: licensing mode, registration, tokens, certificates, transport, reservation
codes, VLN, feature keys.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape

from django.conf import settings

from gateway_ui.models import Appliance, Product

MASK = "*****"


def config_xml(appliance: Appliance, *, now: datetime, mask_passwords: bool) -> str:
    password = appliance.proxy_password
    if password and mask_passwords:
        password = MASK
    lines = [
        '<?xml version="1.0" encoding="ISO-8859-1"?>',
        '<!DOCTYPE config SYSTEM "config.dtd">',
        "<!--",
        f"  Product: {Product(appliance.product).label}",
        f"  Model Number: {appliance.model_pid}",
        f"  Version: {appliance.software_version}",
        f"  Serial Number: {appliance.serial}",
        f"  Current Time: {now.strftime('%Y-%m-%dT%H:%M:%S')}Z",
        "-->",
        "<config>",
        f"  <hostname>{escape(appliance.hostname)}</hostname>",
        "  <update_proxy>",
        f"    <host>{escape(appliance.proxy_host)}</host>",
        f"    <port>{appliance.proxy_port or ''}</port>",
        f"    <username>{escape(appliance.proxy_username)}</username>",
        f"    <password>{escape(password)}</password>",
        "  </update_proxy>",
        "  <alert_config>",
    ]
    for recipient in appliance.alert_recipients.all():
        lines.append(f"    <alert_recipient><address>{escape(recipient.address)}</address>")
        for alert_class, severities in sorted(recipient.classes.items()):
            lines.append(f'      <class name="{escape(alert_class)}">{escape(",".join(severities))}</class>')
        lines.append("    </alert_recipient>")
    lines += ["  </alert_config>", "</config>", ""]
    return "\n".join(lines)


def config_file_name(appliance: Appliance, now: datetime) -> str:
    return f"{appliance.model_pid}-{appliance.serial}-{now.strftime('%Y%m%dT%H%M%S')}.xml"


def config_dir(appliance: Appliance) -> Path:
    """The appliance's configuration directory (under LAB_VAR_DIR)."""
    return Path(settings.VAR_DIR) / "configuration" / appliance.lab.slug / appliance.hostname


def config_save(*, appliance: Appliance, now: datetime, mask_passwords: bool) -> Path:
    folder = config_dir(appliance)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / config_file_name(appliance, now)
    path.write_text(
        config_xml(appliance, now=now, mask_passwords=mask_passwords), encoding="iso-8859-1", errors="xmlcharrefreplace"
    )
    return path

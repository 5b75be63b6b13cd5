"""The table bodies of the busiest portal lists (tokens, product instances, alerts, the product instances report),
written in Python instead of the template language.

In a template a row cost a dozen variable and `{% if %}` nodes, 25 rows a page: most of what was left of those
pages' rendering time (format_html, at ~8 µs a call, would cost most of that again). Each body here is the markup
its template had, row for row; every value goes through `_e`, which escapes as `{{ }}` did. The views hand over
rows of display values (dicts) with their links built.
"""

from html import escape

from django import template
from django.template.defaulttags import CsrfTokenNode
from django.utils.formats import localize
from django.utils.safestring import SafeString

register = template.Library()


_REVOKED = ' <span class="badge">Revoked</span>'
_RESERVED = ' <span class="badge">Reserved</span>'
_RESERVED_NOTE = ' <span class="muted">(reserved licenses)</span>'


def _e(value) -> str:
    """conditional_escape(value) as a plain str: markup made here passes through, anything else is escaped."""
    if hasattr(value, "__html__"):
        return value.__html__()
    return escape(str(value))


def _body(rows, row_html, colspan: int) -> SafeString:
    """The rows one after the other, or the empty-table row. Safe: row_html escapes every value with _e."""
    if not rows:
        return SafeString(f'<tr><td colspan="{colspan}" class="muted">No Records Found</td></tr>')
    return SafeString("".join(map(row_html, rows)))


def _dialog_link(url: str, label: str) -> str:
    """A link that opens in the dialog; `label` is markup already (a constant or an escaped value)."""
    url = _e(url)
    return f'<a href="{url}" hx-get="{url}" hx-target="#dialog">{label}</a>'


def _alert_spans(alerts) -> str:
    return "".join(f'<span class="sev-{_e(sev)}">{_e(label)}</span> ' for sev, label in alerts)


@register.simple_tag(takes_context=True)
def token_rows(context):
    """General: the registration tokens of the Virtual Account."""
    can_edit = context.get("can_edit")
    csrf = CsrfTokenNode().render(context)

    def row(r) -> str:
        revoke = ""
        if can_edit and not r["revoked"]:
            revoke = (
                f'<form method="post" class="inline" action="{_e(r["revoke_url"])}">{csrf}'
                '<button type="submit" class="link">Revoke...</button></form>'
            )
        pk = _e(r["pk"])
        return (
            f'\n      <tr class="{"inactive" if r["inactive"] else ""}">\n'
            f'        <td><code>{_e(r["display"])}</code><span id="token-value-{pk}" class="hidden">{_e(r["value"])}'
            "</span></td>\n"
            f"        <td>{_e(r['expiration'])}{_REVOKED if r['revoked'] else ''}</td>\n"
            f"        <td>{_e(r['uses'])}</td>\n"
            f"        <td>{_e(r['export'])}</td>\n"
            f"        <td>{_e(r['description'])}</td>\n"
            f"        <td>{_e(r['created_by'])}</td>\n"
            '        <td class="actions">\n'
            f'          <button type="button" class="link" data-copy-target="#token-value-{pk}">Copy</button>\n'
            f'          <a href="{_e(r["download_url"])}">Download...</a>\n'
            f"          {revoke}\n"
            "        </td>\n"
            "      </tr>\n    "
        )

    return _body(context.get("rows") or (), row, 7)


@register.simple_tag(takes_context=True)
def instance_rows(context):
    """Product Instances: the product instances of the Virtual Account."""
    can_edit = context.get("can_edit")

    def row(r) -> str:
        actions = ""
        if can_edit:
            reserved = ""
            if r["specific"]:
                confirm = _dialog_link(r["confirm_url"], "Enter Confirmation Code...") if r["pending"] else ""
                update = _dialog_link(r["update_url"], "Update Reserved Licenses...")
                reserved = f"\n          {update}\n          {confirm}\n          "
            transfer = _dialog_link(r["transfer_url"], "Transfer...")
            remove = _dialog_link(r["remove_url"], "Remove...")
            actions = f"\n          {transfer}\n          {remove}\n          {reserved}"
        name = _e(r["name"])
        reserving = r["reserving"]
        return (
            f'\n      <tr data-instance="{name}">\n'
            f"        <td>{_dialog_link(r['url'], name)}"
            f"{_RESERVED if reserving else ''}</td>\n"
            f'        <td>{_e(r["product_type"])} <span class="muted">{_e(r["pid"])}</span></td>\n'
            f"        <td>{_e(r['last_contact'])}"
            f"{_RESERVED_NOTE if reserving else ''}</td>\n"
            f"        <td>{_alert_spans(r['alerts'])}</td>\n"
            f'        <td class="actions">{actions}\n'
            "        </td>\n"
            "      </tr>\n    "
        )

    return _body(context.get("rows") or (), row, 5)


@register.simple_tag(takes_context=True)
def alert_rows(context):
    """Alerts: the open alerts of the Smart Account and of the Virtual Accounts the user sees."""
    sa_name = _e(context["portal"].smart_account.name)

    def row(a) -> str:
        va = a["va"]
        source = f'<a href="{_e(va["url"])}">{_e(va["name"])}</a>' if va else sa_name
        alert_type = _e(a["alert_type"])
        return (
            "<tr>\n"
            f'      <td><input type="checkbox" name="alert" value="{_e(a["pk"])}" form="alerts-form"'
            f' aria-label="Select alert {alert_type}"></td>\n'
            f'      <td><span class="sev-{_e(a["sev_class"])}">{_e(a["severity"])}</span></td><td>{alert_type}</td>'
            f'<td class="nowrap">{_e(a["date"])}</td><td>{_e(a["message"])}</td>\n'
            f"      <td>{source}</td>\n"
            "    </tr>"
        )

    return _body(context.get("rows") or (), row, 6)


@register.simple_tag(takes_context=True)
def instance_report_rows(context):
    """Reports, Product Instances: the product instances of the chosen Virtual Accounts."""

    def row(i) -> str:
        return (
            f"<tr><td>{_e(i['name'])}</td><td>{_e(i['product'])} {_e(i['pid'])}</td><td>{_e(i['va_name'])}</td>"
            f'<td class="nowrap">{_e(i["last_contact"])}</td><td class="num">{_e(localize(i["licenses_in_use"]))}</td>'
            "</tr>"
        )

    return _body(context.get("rows") or (), row, 5)

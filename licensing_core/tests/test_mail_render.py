"""mail_render_many (the sweep's e-mail, rendered by template parts) gives
exactly the strings mail_render (render_to_string per template) gives."""

import copy
import random
from datetime import UTC, date, datetime, timedelta, timezone
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.template.base import VariableDoesNotExist
from django.utils import timezone as dj_timezone
from django.utils.safestring import mark_safe

from licensing_core.mail import mail_render, mail_render_many

NOW = datetime(2030, 1, 1, 9, 0, 5, tzinfo=UTC)
AWKWARD = ["esa1.example.com", "a<b>&c", 'it\'s "quoted"', "  spaced  out\n", "", "é ü ß", "{{ x }}", "%s"]


def _value(rng: random.Random):
    """Texts (some marked safe), and what is not a text: the engine renders those."""
    pick = rng.randrange(10)
    if pick < 5:
        return rng.choice(AWKWARD)
    if pick == 5:
        return mark_safe(rng.choice(AWKWARD))
    return rng.choice([None, 0, 7, True, NOW, date(2030, 2, 3), SimpleNamespace(name="x<y")])


def _time(rng: random.Random):
    return rng.choice(
        [
            None,
            NOW,
            NOW + timedelta(minutes=30),
            NOW.astimezone(timezone(timedelta(hours=5, minutes=30))),  # the same instant elsewhere
            NOW.astimezone(ZoneInfo("America/New_York")),
            datetime(2030, 1, 1, 9, 0, 5),  # naive
            "",
            "not a time",
        ]
    )


def _contexts(rng: random.Random, n: int) -> list[dict]:
    out = []
    for _ in range(n):
        context = {name: _value(rng) for name in ("severity", "hostname", "alert_class", "text", "version", "serial")}
        context.update(timestamp=_time(rng), lab=None, lab_time=_time(rng))
        for name in list(context):
            if name != "lab_time" and rng.random() < 0.05:
                del context[name]  # a missing variable renders as the engine renders it
        out.append(context)
    return out


@pytest.mark.parametrize("tz", ["UTC", "Asia/Kolkata"])
def test_gateway_alert_mail_renders_byte_for_byte_as_render_to_string(tz):
    rng = random.Random(8)
    contexts = _contexts(rng, 400)
    # The sweep's own shape: the same alert for many appliances at a few instants.
    for i in range(200):
        contexts.append(
            {
                "severity": "Information",
                "hostname": f"esa{i}.example.com",
                "alert_class": "System",
                "text": "Renew authorization of the product with Smart Software Manager is successful.",
                "version": "15.0.1-030",
                "serial": f"42{i:06d}",
                "timestamp": NOW + timedelta(minutes=30 * (i % 2)),
                "lab": None,
                "lab_time": NOW,
            }
        )
    with dj_timezone.override(tz):
        want = [mail_render("gateway-alert", copy.copy(c)) for c in contexts]
        got = mail_render_many("gateway-alert", contexts)
    assert got == want
    with pytest.raises(VariableDoesNotExist):  # a filter's argument missing fails both ways
        mail_render("gateway-alert", {"timestamp": None})
    with pytest.raises(VariableDoesNotExist):
        mail_render_many("gateway-alert", [{"timestamp": None}])


def test_templates_with_attributes_or_tags_render_as_render_to_string(settings, tmp_path):
    contexts = [{"req": SimpleNamespace(name=n, domain=f"{n}.example.com")} for n in AWKWARD]
    assert mail_render_many("cssm-sa-setup", contexts) == [mail_render("cssm-sa-setup", c) for c in contexts]
    (tmp_path / "emails").mkdir()
    for suffix, body in (
        ("subject.txt", "{% if urgent %}URGENT {% endif %}{{ name }}"),
        ("body.txt", "{{ name|upper }} {{ count }}"),
        ("body.html", "<p>{{ name }}</p>"),
    ):
        (tmp_path / "emails" / f"tagged-{suffix}").write_text(body)
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]
    contexts = [{"name": n, "urgent": i % 2, "count": i} for i, n in enumerate(AWKWARD)]
    assert mail_render_many("tagged", contexts) == [mail_render("tagged", c) for c in contexts]

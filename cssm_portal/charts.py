"""License usage over time, drawn as a server-side SVG (no scripts, no styles
in attributes: the page's CSS colours the classes).

History comes from the records: purchased(t) is today's purchased quantity
minus the transactions after t; in use(t) is today's use minus the usage
changes the event log recorded after t (their `old`/`new` maps). A product
instance moved between Virtual Accounts takes its usage along: its transfer
event in the source account has the usage as `old`, the one in the target as
`new` (events written before they carried it count as no change).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cssm_portal import selectors, services
from cssm_portal.models import LicenseTransaction
from licensing_core import formats

USAGE_KINDS = (
    "cssm.instance.usage",
    "cssm.instance.removed",
    "cssm.reservation.created",
    "cssm.reservation.updated",
    "cssm.reservation.update_cancelled",
    "cssm.instance.transferred",
)
WIDTH, HEIGHT, PAD_L, PAD_B, PAD_T, PAD_R = 720, 240, 48, 28, 12, 12


@dataclass
class Chart:
    tags: list[tuple[str, str]]  # (tag, name) the user may pick
    tag: str | None
    name: str
    purchased_points: str
    in_use_points: str
    shortage: list[tuple[float, float]]  # x ranges where in use > purchased
    y_ticks: list[tuple[float, int]]
    x_ticks: list[tuple[float, str, str]]  # (x, label, text-anchor)
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = PAD_L
    plot_bottom: int = HEIGHT - PAD_B
    current_purchased: int = 0
    current_in_use: int = 0


def _delta(kind: str, old, new, tag: str) -> int:
    old = old if isinstance(old, dict) else {}
    new = new if isinstance(new, dict) else {}
    if kind == "cssm.instance.removed":
        return -int(old.get(tag, 0))
    return int(new.get(tag, 0)) - int(old.get(tag, 0))


def usage_series(
    *, lab, vas, tag: str, start: datetime, now: datetime, purchased_now: int, in_use_now: int
) -> list[tuple[datetime, int, int]]:
    """(time, purchased, in use) of `tag` over `vas` from `start` to `now`, one point per change."""
    va_ids = [va.pk for va in vas]
    changes: list[tuple[datetime, int, int]] = []  # (at, d_purchased, d_in_use)
    for at, qty in LicenseTransaction.objects.filter(virtual_account_id__in=va_ids, tag=tag, at__gt=start).values_list(
        "at", "quantity"
    ):
        changes.append((at, qty, 0))
    for ev in selectors.events(lab=lab).filter(virtual_account_id__in=va_ids, kind__in=USAGE_KINDS, at__gt=start):
        d = _delta(ev.kind, ev.old, ev.new, tag)
        if d:
            changes.append((ev.at, 0, d))
    # Changes at one instant are one step (a transfer within the chosen accounts is -n and +n
    # at once: no spike); a net zero is no step.
    merged: dict[datetime, list[int]] = {}
    for at, dp, du in changes:
        step = merged.setdefault(at, [0, 0])
        step[0] += dp
        step[1] += du
    changes = sorted((at, dp, du) for at, (dp, du) in merged.items() if dp or du)
    # Walk backwards from today's values to the start of the window.
    p = purchased_now - sum(c[1] for c in changes)
    u = in_use_now - sum(c[2] for c in changes)
    series = [(start, p, u)]
    for at, dp, du in changes:
        p, u = p + dp, u + du
        series.append((at, p, u))
    series.append((now, p, u))
    return series


def usage_chart(*, lab, vas, now: datetime, tag: str | None, days: int = 90) -> Chart | None:
    pools = list(selectors.pools(vas).order_by("name"))
    if not pools:
        return None
    names = {}
    for p in pools:
        names.setdefault(p.tag, p.name)
    if tag not in names:
        short = [p for p in pools if p.balance < 0]
        tag = (short or [p for p in pools if p.in_use] or pools)[0].tag
    purchased_now = sum(p.purchased for p in pools if p.tag == tag)
    in_use_now = sum(p.in_use for p in pools if p.tag == tag)
    start = now - timedelta(days=days)
    series = usage_series(
        lab=lab, vas=vas, tag=tag, start=start, now=now, purchased_now=purchased_now, in_use_now=in_use_now
    )
    top = max(max(max(s[1], s[2]) for s in series), 1)
    top = int(top * 1.15) + 1
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def x(at: datetime) -> float:
        return round(PAD_L + plot_w * ((at - start) / (now - start)), 1)

    def y(v: int) -> float:
        return round(PAD_T + plot_h * (1 - v / top), 1)

    def steps(idx: int) -> str:
        pts = []
        prev = None
        for s in series:
            if prev is not None:
                pts.append(f"{x(s[0])},{y(prev)}")
            pts.append(f"{x(s[0])},{y(s[idx])}")
            prev = s[idx]
        return " ".join(pts)

    shortage = []
    for a, b in zip(series, series[1:], strict=False):
        if a[2] > a[1]:
            shortage.append((x(a[0]), round(x(b[0]) - x(a[0]), 1)))
    step = max(1, top // 4)
    y_ticks = [(y(v), v) for v in range(0, top + 1, step)]
    anchors = {0: "start", days: "end"}
    x_ticks = [
        (x(start + timedelta(days=d)), formats.cssm_date(start + timedelta(days=d)), anchors.get(d, "middle"))
        for d in (0, days // 3, 2 * days // 3, days)
    ]
    return Chart(
        tags=sorted(names.items(), key=lambda kv: kv[1]),
        tag=tag,
        name=names[tag] if tag in names else services.license_name(tag),
        purchased_points=steps(1),
        in_use_points=steps(2),
        shortage=shortage,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        current_purchased=purchased_now,
        current_in_use=in_use_now,
    )

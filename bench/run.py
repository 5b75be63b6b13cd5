"""The benchmark suite: `make bench` (or `.venv/bin/python bench/run.py`).

Builds its own PostgreSQL database (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/smartlab_bench), seeds fleet labs with
seed_fleet, starts gunicorn (2 workers, bench.settings: the project plus the
two baselines of bench/views.py) on 127.0.0.1, drives it with wrk from a
second process, runs the sweeps and time travel in this process against that
server (the Smart Agent talks HTTP to it), and writes docs/benchmarks.md.

Each figure is the median over BENCH_RUNS runs (default 3) with its spread
(min-max of the runs); every ratio compares figures measured in this one run.

Options (environment): BENCH_RUNS, BENCH_REUSE=1 (keep the database and its
labs from a previous run), BENCH_SIZES (page sizes, default 1000,10000,100000),
BENCH_SWEEP_SIZES (default 1000,10000), BENCH_TT_SIZES (default 100,1000),
BENCH_SKIP (comma list of sections to skip: pages,fleet,floor,csv,register,sweeps,timetravel), BENCH_OUT (where
to write the report instead of docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import platform
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PORT = int(os.environ.get("BENCH_PORT", "8765"))
CSV_PORT = PORT + 1
BASE = f"http://127.0.0.1:{PORT}"
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/smartlab_bench")
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
REUSE = os.environ.get("BENCH_REUSE") == "1"
SKIP = set(filter(None, os.environ.get("BENCH_SKIP", "").split(",")))
SIZES = [int(x) for x in os.environ.get("BENCH_SIZES", "1000,10000,100000").split(",")]
SWEEP_SIZES = [int(x) for x in os.environ.get("BENCH_SWEEP_SIZES", "1000,10000").split(",")]
TT_SIZES = [int(x) for x in os.environ.get("BENCH_TT_SIZES", "100,1000").split(",")]
OUT = Path(os.environ.get("BENCH_OUT", str(ROOT / "docs" / "benchmarks.md")))

ENV = {
    **os.environ,
    "DATABASE_URL": DB_URL,
    "DJANGO_SETTINGS_MODULE": "bench.settings",
    "DEBUG": "0",
    "LAB_PROFILE": "development",
    "CSSM_BASE_URL": BASE,
    "CELERY_BROKER_URL": os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/11"),
    "PYTHONPATH": str(ROOT),
    # Persistent connections, as docs/deploy.md recommends for production.
    "DATABASE_CONN_MAX_AGE": os.environ.get("DATABASE_CONN_MAX_AGE", "60"),
    "STATIC_ROOT": str(ROOT / "var" / "bench-static"),
}
os.environ.update({k: ENV[k] for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DEBUG", "CSSM_BASE_URL",
                                         "CELERY_BROKER_URL", "STATIC_ROOT")})  # fmt: skip
# A size whose run is estimated (from the smaller size, assuming linear growth) to take longer than this
# is not run; the report says so and gives the estimate.
BUDGET = float(os.environ.get("BENCH_BUDGET_SECONDS", "900"))
# A sweep run longer than this is not repeated.
REPEAT_LIMIT = float(os.environ.get("BENCH_REPEAT_LIMIT_SECONDS", "60"))
sys.path.insert(0, str(ROOT))


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- figures --------------------------------------------------------------------------------------------------------


@dataclass
class Figure:
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def fmt(self, unit: str = "ms", digits: int = 1) -> str:
        if not self.values:
            return "n/a"
        lo, hi = min(self.values), max(self.values)
        if len(self.values) == 1:
            return f"{self.median:.{digits}f} {unit} (1 run)"
        return f"{self.median:.{digits}f} {unit} ({lo:.{digits}f}–{hi:.{digits}f}, n={len(self.values)})"


def ratio(a: Figure, b: Figure) -> float:
    return a.median / b.median if b.median else float("nan")


def verdict(value: float, limit: float, *, at_least: bool = False) -> str:
    if value != value:  # nan
        return "n/a"
    ok = value >= limit if at_least else value <= limit
    return "met" if ok else "**not met**"


# --- setup ---------------------------------------------------------------------------------------------------------


def manage(*args: str, quiet: bool = False) -> None:
    cmd = [str(VENV_BIN / "python"), "manage.py", *args]
    log(" ".join(cmd[1:]))
    env = {**ENV, "DJANGO_SETTINGS_MODULE": "config.settings"}
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL if quiet else None)


def database_create() -> None:
    import psycopg

    name = DB_URL.rsplit("/", 1)[1]
    admin = DB_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and REUSE:
            return
        if exists:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def page_lab(n: int) -> str:
    return f"p{n}"


def seed() -> None:
    import django

    django.setup()
    from licensing_core.models import Lab

    manage("migrate", "--noinput", quiet=True)
    manage("collectstatic", "--noinput", quiet=True)
    have = set(Lab.objects.values_list("slug", flat=True))
    for n in SIZES:
        if page_lab(n) not in have:
            # 1 % of the instances failing to connect (open alerts; at least two pages of them, so the
            # Alerts page shows 25 rows at every size), one event per instance besides its registration
            # event, 50 tokens, and one registered appliance for the appliance pages.
            manage("seed_fleet", "--lab", page_lab(n), "--appliances", str(n), "--registered", "1",
                   "--alerts", str(max(50, n // 100)), "--events", str(n), "--tokens", "50")  # fmt: skip
    for n in SWEEP_SIZES:
        if f"w{n}" not in have:
            manage("seed_fleet", "--lab", f"w{n}", "--appliances", str(n), "--registered", str(n), "--tokens", "1")
    for n in TT_SIZES:
        if f"t{n}" not in have:
            manage("seed_fleet", "--lab", f"t{n}", "--appliances", str(n), "--registered", str(n), "--tokens", "1")
    if "reg" not in have:
        manage("seed_fleet", "--lab", "reg", "--appliances", "1000", "--tokens", "1")


# --- the server ------------------------------------------------------------------------------------------------------


@contextmanager
def gunicorn(port: int, workers: int):
    cmd = [str(VENV_BIN / "gunicorn"), "config.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{port}",
           "--env", "DJANGO_SETTINGS_MODULE=bench.settings", "--timeout", "300", "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):  # noqa: S310
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def worker_pids(master: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    except OSError:
        return []


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def session_cookie(username: str = "bench") -> str:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    user = get_user_model().objects.get(username=username)
    s = SessionStore()
    s[SESSION_KEY] = str(user.pk)
    s[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    s[HASH_SESSION_KEY] = user.get_session_auth_hash()
    s.create()
    return f"{settings.SESSION_COOKIE_NAME}={s.session_key}"


# --- wrk --------------------------------------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


@dataclass
class WrkResult:
    median_ms: float
    rps: float
    requests: int
    bad: int


def _probe(url: str, cookie: str) -> float:
    """One request (checked to be a 200) and its time in seconds."""
    req = urllib.request.Request(url, headers={"Cookie": cookie})  # noqa: S310
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as resp:  # noqa: S310
        resp.read()
        if resp.status != 200 or resp.url != url:
            raise RuntimeError(f"{url} answered {resp.status} at {resp.url}")
    return time.perf_counter() - t


def wrk(url: str, *, cookie: str = "", conns: int = 1, seconds: float = 2.0, script: str | None = None,
        script_args: list[str] | None = None) -> WrkResult:  # fmt: skip
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "120s"]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    if script_args:
        cmd += ["--", *script_args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    m = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    reqs = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if not (m and rps and reqs):
        raise RuntimeError(f"cannot read wrk output:\n{out}")
    n_bad = int(bad.group(1)) if bad else 0
    if errs:
        n_bad += sum(int(x) for x in errs.groups())
    return WrkResult(float(m.group(1)) * _UNITS[m.group(2)], float(rps.group(1)), int(reqs.group(1)), n_bad)


def latency(url: str, cookie: str, *, conns: int = 1, min_seconds: float = 2.0) -> WrkResult:
    """wrk for long enough to complete a few requests of this page."""
    one = _probe(url, cookie)
    seconds = min(60.0, max(min_seconds, one * 3 * max(1, conns) / 2))
    res = wrk(url, cookie=cookie, conns=conns, seconds=seconds)
    if res.bad:
        raise RuntimeError(f"{url}: {res.bad} failed requests")
    return res


# --- the report ------------------------------------------------------------------------------------------------------


class Report:
    def __init__(self) -> None:
        self.sections: list[str] = []
        self.targets: list[tuple[str, str, str, str]] = []  # (ratio, value, target, verdict)

    def add(self, text: str) -> None:
        self.sections.append(text.rstrip() + "\n")

    def target(self, name: str, value: float, limit: float, *, at_least: bool = False, fmt: str = "{:.2f}×") -> None:
        sign = "≥" if at_least else "≤"
        self.targets.append(
            (name, fmt.format(value), f"{sign} {fmt.format(limit)}", verdict(value, limit, at_least=at_least))
        )

    def write(self, started: float) -> None:
        cpu = "unknown"
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        import django
        import psycopg

        with psycopg.connect(DB_URL) as conn:
            pg = conn.execute("SHOW server_version").fetchone()[0]
        head = [
            "# Benchmarks",
            "",
            "Generated by `make bench` (bench/run.py); do not edit by hand. What the figures mean and what was",
            "changed because of them: docs/performance.md.",
            "",
            f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
            f"the whole run took {(time.monotonic() - started) / 60:.1f} min",
            f"- Machine: {os.cpu_count()} cores ({cpu}), {_mem_gb():.0f} GiB, {platform.platform()}",
            f"- Python {platform.python_version()}, Django {django.get_version()}, PostgreSQL {pg}, "
            f"gunicorn 2 sync workers (bench.settings, DEBUG off), load from wrk on 127.0.0.1 (1 thread)",
            f"- Each figure: median over the runs, (min–max, n=runs). Runs per figure: {RUNS}.",
            "",
            "## Targets",
            "",
            "| Ratio | Measured | Target | |",
            "|---|---|---|---|",
            *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in self.targets],
            "",
        ]
        missed = [t for t in self.targets if t[3] != "met"]
        if missed:
            head += [
                f"{len(self.targets) - len(missed)} of {len(self.targets)} targets met. For each target not met, "
                "what dominates and what would be needed: docs/performance.md, *What dominates where a target is "
                "not met*; the profiles of the slowest page and of time travel: *Profiles*.",
                "",
            ]
        else:
            head += [f"All {len(self.targets)} targets met.", ""]
        OUT.write_text("\n".join(head) + "\n" + "\n".join(self.sections))
        log(f"wrote {OUT}")


def _mem_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


# --- benchmarks -------------------------------------------------------------------------------------------------------


def _lab_urls(slug: str) -> dict[str, str]:
    from cssm_portal.models import SmartAccount, VirtualAccount
    from labs.management.commands.seed_fleet import TEMPLATE_HOST

    sa = SmartAccount.objects.filter(lab__slug=slug).order_by("pk").first()
    va = VirtualAccount.objects.get(smart_account=sa, name="Fleet")
    c = f"{BASE}/cssm/{slug}/{sa.pk}/"
    v = f"{c}inventory/{va.pk}/"
    g = f"{BASE}/appliance/{slug}/{TEMPLATE_HOST}/"
    return {
        "CSSM General": v,
        "CSSM Licenses": f"{v}licenses/",
        "CSSM Product Instances": f"{v}instances/",
        "CSSM Event Log (VA)": f"{v}events/",
        "CSSM Alerts": f"{c}alerts/",
        "CSSM Reports (product instances)": f"{c}reports/?report=instances",
        "CSSM Reports (licenses)": f"{c}reports/?report=licenses",
        "Gateway Smart Software Licensing": f"{g}smart-licensing/",
        "Gateway Licenses": f"{g}licenses/",
        "_csv": f"{c}reports/?report=instances&format=csv",
    }


CSSM_LIST_PAGES = [
    "CSSM General",
    "CSSM Licenses",
    "CSSM Product Instances",
    "CSSM Event Log (VA)",
    "CSSM Alerts",
    "CSSM Reports (product instances)",
    "CSSM Reports (licenses)",
]
MAIN_PAGES = [
    "Gateway Smart Software Licensing",
    "Gateway Licenses",
    "CSSM General",
    "CSSM Licenses",
    "CSSM Product Instances",
    "CSSM Alerts",
    "CSSM Reports (product instances)",
]


def bench_pages(report: Report, cookie: str) -> None:
    """Single-client latency of every list page at each size (ratio 1 and 7)."""
    urls = {n: _lab_urls(page_lab(n)) for n in SIZES}
    figs: dict[tuple[str, int], Figure] = {}
    for r in range(RUNS):
        for page in CSSM_LIST_PAGES:
            order = SIZES if r % 2 == 0 else list(reversed(SIZES))
            for n in order:
                res = latency(urls[n][page], cookie)
                figs.setdefault((page, n), Figure()).values.append(res.median_ms)
            log(f"pages run {r + 1}: {page}: " + ", ".join(f"{n}={figs[(page, n)].values[-1]:.1f}ms" for n in SIZES))
    small, big = SIZES[0], SIZES[-1]
    lines = [
        "## 1 and 7. List pages against their row count (one client)",
        "",
        "Median latency of one client (wrk -c1) on the first page of each list, in labs whose virtual account holds "
        + ", ".join(f"{n:,}" for n in SIZES)
        + " product instances (and as many usage rows ×2, CSSM events ×2, 1 % failing instances with open alerts,"
        " at least 50).",
        "",
        "| Page | " + " | ".join(f"{n:,} rows" for n in SIZES) + f" | {big:,} / {small:,} | ×10 growth (max) |",
        "|---|" + "---|" * (len(SIZES) + 2),
    ]
    worst_growth = 0.0
    for page in CSSM_LIST_PAGES:
        growth = max(ratio(figs[(page, b)], figs[(page, a)]) for a, b in zip(SIZES, SIZES[1:], strict=False))
        worst_growth = max(worst_growth, growth)
        rr = ratio(figs[(page, big)], figs[(page, small)])
        lines.append(
            f"| {page} | " + " | ".join(figs[(page, n)].fmt() for n in SIZES) + f" | {rr:.2f}× | {growth:.2f}× |"
        )
        report.target(f"1. {page}: {big:,} rows vs {small:,}", rr, 1.3)
    report.target("7. List pages, worst ×10 growth (size-independent work)", worst_growth, 1.3)
    report.add("\n".join(lines))


def bench_fleet_pages(report: Report, cookie: str) -> None:
    """The lab page and an appliance page (its switcher) against the lab's appliance count (ratio 1 and 7):
    the sweep labs, before their sweeps."""
    from gateway_ui.models import Appliance

    sizes = list(SWEEP_SIZES)
    if len(sizes) < 2:
        return
    urls = {}
    for n in sizes:
        host = (
            Appliance.objects.filter(lab__slug=f"w{n}").order_by("hostname").values_list("hostname", flat=True)[n // 2]
        )
        urls[("Lab page (appliance list)", n)] = f"{BASE}/labs/w{n}/"
        switcher = "Gateway Smart Software Licensing (appliance switcher)"
        urls[(switcher, n)] = f"{BASE}/appliance/w{n}/{host}/smart-licensing/"
    pages = sorted({page for page, _ in urls}, reverse=True)
    figs: dict[tuple[str, int], Figure] = {}
    for r in range(RUNS):
        for page in pages:
            for n in sizes if r % 2 == 0 else list(reversed(sizes)):
                figs.setdefault((page, n), Figure()).values.append(latency(urls[(page, n)], cookie).median_ms)
    small, big = sizes[0], sizes[-1]
    lines = [
        "## 1. Pages against the lab's appliance count (one client)",
        "",
        "The lab page (its appliance list, 50 a page) and an appliance's Smart Software Licensing page (its "
        "appliance switcher, the neighbours by host name) in labs of " + ", ".join(f"{n:,}" for n in sizes) +
        " registered appliances.",
        "",
        "| Page | " + " | ".join(f"{n:,} appliances" for n in sizes) + f" | {big:,} / {small:,} |",
        "|---|" + "---|" * (len(sizes) + 1),
    ]  # fmt: skip
    for page in pages:
        rr = ratio(figs[(page, big)], figs[(page, small)])
        lines.append(f"| {page} | " + " | ".join(figs[(page, n)].fmt() for n in sizes) + f" | {rr:.2f}× |")
        report.target(f"1. {page}: {big:,} appliances vs {small:,}", rr, 1.3)
    report.add("\n".join(lines))


def bench_floor(report: Report, cookie: str) -> None:
    """8 concurrent clients: main pages against the bare authenticated view (ratio 2), in the middle-sized lab
    (tens of thousands of instances; the largest is covered by the size table)."""
    n = SIZES[len(SIZES) // 2]
    urls = _lab_urls(page_lab(n))
    urls["Floor (bare authenticated view)"] = f"{BASE}/bench/floor/"
    names = ["Floor (bare authenticated view)", *MAIN_PAGES]
    figs = {k: Figure() for k in names}
    rps = {k: Figure() for k in names}
    for r in range(RUNS):
        for k in names:
            res = latency(urls[k], cookie, conns=8, min_seconds=3)
            figs[k].values.append(res.median_ms)
            rps[k].values.append(res.rps)
        log(f"floor run {r + 1}: " + ", ".join(f"{k}={figs[k].values[-1]:.1f}" for k in names))
    floor = figs[names[0]]
    lines = [
        f"## 2. Main pages against the floor (8 concurrent clients, lab of {n:,} product instances)",
        "",
        "| Page | Median latency | Requests/s | × floor |",
        "|---|---|---|---|",
    ]
    for k in names:
        lines.append(f"| {k} | {figs[k].fmt()} | {rps[k].fmt('req/s', 0)} | {ratio(figs[k], floor):.2f}× |")
        if k != names[0]:
            report.target(f"2. {k} vs floor (8 clients)", ratio(figs[k], floor), 5)
    report.add("\n".join(lines))


def bench_register(report: Report) -> None:
    """Agent registration (certificate issuance included) against a bare JSON endpoint (ratio 5)."""
    from cssm_portal import services as cssm
    from cssm_portal.models import VirtualAccount
    from licensing_core import pki
    from licensing_core.catalogue import make_udi
    from licensing_core.clock import lab_now
    from licensing_core.models import Lab

    lab = Lab.objects.get(slug="reg")
    va = VirtualAccount.objects.get(smart_account__lab=lab, name="Fleet")
    now = lab_now(lab)
    token = cssm.token_create(va=va, actor="bench", description="bench", expire_days=365, max_uses=None,
                              export_controlled=False, now=now).value  # fmt: skip
    key = pki.make_device_key()
    tmp = Path(tempfile.mkdtemp(prefix="bench-reg-"))
    script = tmp / "bodies.lua"
    script.write_text(
        "local bodies = {}\nlocal i = 0\n"
        "init = function(args) for line in io.lines(args[1]) do bodies[#bodies + 1] = line end end\n"
        "request = function()\n  i = i + 1\n  if i > #bodies then i = 1 end\n"
        '  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[i])\nend\n'
    )
    seconds = 5
    per_run = 2500  # more than the endpoint can register in `seconds`: every request is a new product

    def bodies(run: int) -> Path:
        path = tmp / f"run{run}.jsonl"
        with path.open("w") as f:
            for i in range(per_run):
                serial = f"REG{run:02d}{i:07d}{secrets.token_hex(2)}"
                udi = make_udi("C395", serial)
                host = f"reg{run}-{i}.example.com"
                env = {
                    "protocol": "smart-agent/1", "lab": lab.slug, "type": "register", "udi": udi,
                    "sent_at": now.isoformat(), "nonce": secrets.token_hex(16),
                    "body": {"token": token, "csr": pki.make_csr(key_pem=key, common_name=host, udi=udi).decode(),
                             "hostname": host, "product": "ESA", "pid": "C395", "serial": serial,
                             "software_version": "16.0.0-000", "agent_version": "1.3.7", "force": False},
                }  # fmt: skip
                f.write(json.dumps(env) + "\n")
        return path

    reg, bare = Figure(), Figure()
    reg_lat, bare_lat = Figure(), Figure()
    bad = 0
    for r in range(RUNS):
        path = bodies(r)
        b = wrk(f"{BASE}/bench/json/", conns=8, seconds=seconds, script=str(script), script_args=[str(path)])
        g = wrk(f"{BASE}/licservice/license", conns=8, seconds=seconds, script=str(script), script_args=[str(path)])
        if g.requests > per_run:
            log(f"register run {r}: {g.requests} requests > {per_run} bodies; repeats were refused")
        bad += g.bad + b.bad
        reg.values.append(g.rps)
        bare.values.append(b.rps)
        reg_lat.values.append(g.median_ms)
        bare_lat.values.append(b.median_ms)
        log(f"register run {r + 1}: register {g.rps:.0f}/s ({g.bad} refused), bare JSON {b.rps:.0f}/s")
    shutil.rmtree(tmp, ignore_errors=True)
    rr = ratio(reg, bare)
    report.target("5. Agent registration throughput vs bare JSON endpoint", rr, 0.25, at_least=True,
                  fmt="{:.1%}")  # fmt: skip
    report.add(
        "\n".join(
            [
                "## 5. Smart Agent registration over HTTP (8 concurrent clients)",
                "",
                "Each request registers a new product (its own UDI and CSR; the CSSM checks the token, issues an ID "
                "certificate from the lab CA, writes the instance and its events). The bare endpoint parses the "
                "same bodies.",
                "",
                "| Endpoint | Throughput | Median latency |",
                "|---|---|---|",
                f"| Bare JSON endpoint | {bare.fmt('req/s', 0)} | {bare_lat.fmt()} |",
                f"| POST /licservice/license (register) | {reg.fmt('req/s', 0)} | {reg_lat.fmt()} |",
                "",
                f"Registration sustains {rr:.1%} of the bare endpoint's throughput. Refused or failed requests "
                f"across all runs: {bad}.",
            ]
        )
    )


def bench_csv(report: Report, cookie: str) -> None:
    """Peak memory of one worker exporting the product instance report as CSV (ratio 6)."""
    peak: dict[int, Figure] = {n: Figure() for n in SIZES}
    delta: dict[int, Figure] = {n: Figure() for n in SIZES}
    secs: dict[int, Figure] = {n: Figure() for n in SIZES}
    size_mb: dict[int, float] = {}
    base = f"http://127.0.0.1:{CSV_PORT}"
    for r in range(RUNS):
        for n in SIZES:
            url = _lab_urls(page_lab(n))["_csv"].replace(BASE, base)
            with gunicorn(CSV_PORT, 1) as proc:
                _probe(f"{base}/bench/floor/", cookie)  # the worker is warm: imports, templates, connection
                pids = worker_pids(proc.pid)
                before = vm_hwm_mb(pids[0])
                req = urllib.request.Request(url, headers={"Cookie": cookie})  # noqa: S310
                t = time.perf_counter()
                total = 0
                with urllib.request.urlopen(req, timeout=600) as resp:  # noqa: S310
                    while chunk := resp.read(1 << 16):
                        total += len(chunk)
                secs[n].values.append(time.perf_counter() - t)
                after = vm_hwm_mb(pids[0])
            peak[n].values.append(after)
            delta[n].values.append(after - before)
            size_mb[n] = total / 1e6
        log(f"csv run {r + 1}: " + ", ".join(f"{n}={peak[n].values[-1]:.0f}MB" for n in SIZES))
    small, big = SIZES[0], SIZES[-1]
    lines = [
        "## 6. CSV export of the product instance report (one gunicorn worker)",
        "",
        "Peak resident memory (VmHWM) of the worker serving the export, and how much the export added to the "
        "warmed-up worker's peak.",
        "",
        "| Instances | CSV size | Time | Peak RSS | Added by the export |",
        "|---|---|---|---|---|",
    ]
    for n in SIZES:
        lines.append(
            f"| {n:,} | {size_mb[n]:.1f} MB | {secs[n].fmt('s', 2)} | {peak[n].fmt('MB', 0)} "
            f"| {delta[n].fmt('MB', 0)} |"
        )
    report.target(f"6. CSV export peak RSS at {big:,} instances (MB)", peak[big].median, 150, fmt="{:.0f}")
    report.target(f"6. CSV export peak RSS {big:,} vs {small:,}", ratio(peak[big], peak[small]), 2)
    growth = max(ratio(secs[b], secs[a]) for a, b in zip(SIZES, SIZES[1:], strict=False))
    report.target("7. CSV export time, worst ×10 growth (linear work)", growth, 12)
    report.add("\n".join(lines))


def _count_rows() -> dict[str, int]:
    from cssm_portal.models import CssmAlert
    from gateway_ui.models import ApplianceAlert
    from licensing_core.models import Event, MailMessage

    return {
        "events": Event.objects.count(),
        "appliance alerts": ApplianceAlert.objects.count(),
        "CSSM alerts": CssmAlert.objects.count(),
        "e-mails": MailMessage.objects.count(),
    }


def _bulk_events(n: int, lab) -> float:
    """Seconds to bulk-insert n event rows (rolled back)."""
    from django.db import transaction

    from licensing_core.models import Event

    rows = [Event(lab=lab, at=datetime.now(UTC), side="gateway", kind="bench.bulk", message=f"Bulk event {i}",
                  appliance_id=i) for i in range(n)]  # fmt: skip
    t = time.perf_counter()
    with transaction.atomic():
        Event.objects.bulk_create(rows, batch_size=5000)
        elapsed = time.perf_counter() - t
        transaction.set_rollback(True)
    return elapsed


def bench_sweeps(report: Report) -> None:
    """Sweeps with nothing due (fixed cost) and a sweep renewing every appliance's authorization (ratio 3)."""
    from django.db import connection
    from django.db.models import Min
    from django.test.utils import CaptureQueriesContext

    from gateway_ui.models import Appliance
    from licensing_core.clock import clock_set, lab_now
    from licensing_core.models import Lab
    from licensing_core.sweeps import lab_sweep

    # --- nothing due ---
    idle: dict[int, Figure] = {n: Figure() for n in SIZES}
    queries: dict[int, int] = {}
    for r in range(RUNS):
        for n in SIZES:
            lab = Lab.objects.get(slug=page_lab(n))
            now = lab_now(lab)
            t = time.perf_counter()
            with CaptureQueriesContext(connection) as ctx:
                lab_sweep(lab=lab, now=now)
            idle[n].values.append((time.perf_counter() - t) * 1000)
            queries[n] = len(ctx.captured_queries)
        log(f"idle sweep run {r + 1}: " + ", ".join(f"{n}={idle[n].values[-1]:.1f}ms" for n in SIZES))
    # The same in the fleet labs, before their renewals fall due: as many registered appliances as instances.
    fleet_idle: dict[int, Figure] = {n: Figure() for n in SWEEP_SIZES}
    fleet_queries: dict[int, int] = {}
    for _ in range(RUNS):
        for n in SWEEP_SIZES:
            lab = Lab.objects.get(slug=f"w{n}")
            t = time.perf_counter()
            with CaptureQueriesContext(connection) as ctx:
                lab_sweep(lab=lab, now=lab_now(lab))
            fleet_idle[n].values.append((time.perf_counter() - t) * 1000)
            fleet_queries[n] = len(ctx.captured_queries)
    small, big = SIZES[0], SIZES[-1]
    lines = [
        "## 1 and 3. Sweeps",
        "",
        "### A sweep with nothing due (every registered sweep, in process)",
        "",
        "| Lab | Time | Queries |",
        "|---|---|---|",
        *[f"| {n:,} product instances | {idle[n].fmt()} | {queries[n]} |" for n in SIZES],
        *[
            f"| {n:,} registered appliances (and product instances) | {fleet_idle[n].fmt()} | {fleet_queries[n]} |"
            for n in SWEEP_SIZES
        ],
    ]
    report.target(f"1. Sweep with nothing due: {big:,} vs {small:,}", ratio(idle[big], idle[small]), 1.3)
    if len(SWEEP_SIZES) > 1:
        fs, fb = SWEEP_SIZES[0], SWEEP_SIZES[-1]
        report.target(
            f"1. Sweep with nothing due: {fb:,} appliances vs {fs:,}", ratio(fleet_idle[fb], fleet_idle[fs]), 1.3
        )
    # --- renewals ---
    renew: dict[int, Figure] = {n: Figure() for n in SWEEP_SIZES}
    raw: dict[int, Figure] = {n: Figure() for n in SWEEP_SIZES}
    written: dict[int, dict[str, int]] = {}
    skipped: dict[int, float] = {}
    for r in range(RUNS):
        for n in SWEEP_SIZES:
            if r > 0 and renew[n].values and renew[n].median > REPEAT_LIMIT:
                continue  # one run of a slow size is enough to read it; the spread comes from the fast sizes
            lab = Lab.objects.get(slug=f"w{n}")
            if n != SWEEP_SIZES[0] and renew[SWEEP_SIZES[0]].values:
                estimate = renew[SWEEP_SIZES[0]].median * n / SWEEP_SIZES[0]
                if estimate > BUDGET:
                    skipped[n] = estimate
                    continue
            # The appliances' next authorization renewal (all were registered at the same instant).
            due = Appliance.objects.filter(lab=lab, next_due_at__isnull=False).aggregate(m=Min("next_due_at"))["m"]
            clock_set(lab=lab, to=max(due, lab_now(lab)))
            lab.refresh_from_db()
            now = lab_now(lab)
            due_count = Appliance.objects.filter(lab=lab, next_due_at__lte=now).count()
            before = _count_rows()
            t = time.perf_counter()
            processed = lab_sweep(lab=lab, now=now)
            renew[n].values.append(time.perf_counter() - t)
            after = _count_rows()
            written[n] = {k: after[k] - before[k] for k in after}
            written[n]["due appliances"] = due_count
            written[n]["processed"] = processed
            raw[n].values.append(_raw_renewal_writes(lab, now, written[n]))
            log(f"renewal sweep run {r + 1}, {n}: {renew[n].values[-1]:.1f}s for {processed} "
                f"(raw {raw[n].values[-1]:.2f}s) {written[n]}")  # fmt: skip
            connection.close()
    lines += [
        "",
        "### A sweep renewing every appliance's authorization",
        "",
        "The lab clock is moved to the appliances' next authorization renewal; the sweep then claims the due "
        "appliances, runs the renewal exchange of each — every message signed by its own device key, carried in "
        "batch POSTs of up to 1,000 to the CSSM's /licservice/license/batch (the server above) and checked there "
        "one by one — and writes the outcomes in bulk, in this process. The raw equivalent is "
        "the same writes as bulk SQL in one transaction (rolled back): one UPDATE of the appliances' timer columns, "
        "one UPDATE of their licence rows, one UPDATE of the product instances' last contact and usage, and "
        "bulk INSERTs of as many event, alert and mail rows as the sweep wrote.",
        "",
        "| Appliances due | Sweep | Raw bulk SQL | × raw | Rows written by the sweep |",
        "|---|---|---|---|---|",
    ]
    for n in SWEEP_SIZES:
        if n in skipped:
            lines.append(f"| {n:,} | not run: estimated {skipped[n]:.0f} s from the {SWEEP_SIZES[0]:,} run "
                         f"(over the {BUDGET:.0f} s budget) | | | |")  # fmt: skip
            report.target(f"3. Renewal sweep of {n:,} vs raw bulk SQL", float("nan"), 5)
            continue
        rr = ratio(renew[n], raw[n])
        lines.append(f"| {n:,} | {renew[n].fmt('s', 2)} | {raw[n].fmt('s', 3)} | {rr:.1f}× | "
                     + ", ".join(f"{k} {v:,}" for k, v in written[n].items()) + " |")  # fmt: skip
        report.target(f"3. Renewal sweep of {n:,} vs raw bulk SQL", rr, 5)
    if len(SWEEP_SIZES) > 1 and SWEEP_SIZES[-1] not in skipped:
        report.target(
            "7. Renewal sweep ×10 growth (linear work)", ratio(renew[SWEEP_SIZES[-1]], renew[SWEEP_SIZES[0]]), 12
        )
    report.add("\n".join(lines))


def _raw_renewal_writes(lab, now, written: dict[str, int]) -> float:
    """Seconds for the renewal's writes as bulk SQL (rolled back)."""
    from datetime import timedelta

    from django.db import connection, transaction

    from cssm_portal.models import CssmAlert
    from gateway_ui.models import ApplianceAlert
    from licensing_core.models import Event, MailMessage

    n_events = max(written.get("events", 0), 0)
    n_alerts = max(written.get("appliance alerts", 0), 0)
    n_mail = max(written.get("e-mails", 0), 0)
    t = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "UPDATE gateway_ui_appliance SET last_auth_attempt_at = %s, last_auth_ok = true, last_auth_success_at = %s,"
            " auth_expires_at = %s, next_auth_renewal_at = %s, next_due_at = %s WHERE lab_id = %s",
            [now, now, now + timedelta(days=90), now + timedelta(days=30), now + timedelta(days=30), lab.pk],
        )
        cur.execute(
            "UPDATE gateway_ui_appliancelicense SET changed_at = %s WHERE appliance_id IN "
            "(SELECT id FROM gateway_ui_appliance WHERE lab_id = %s) AND state <> 'not_requested'",
            [now, lab.pk],
        )
        cur.execute("UPDATE cssm_portal_productinstance SET last_contact = %s, recent_nonces = '[]' WHERE lab_id = %s",
                    [now, lab.pk])  # fmt: skip
        cur.execute(
            "UPDATE cssm_portal_licenseusage SET status = 'authorized' WHERE instance_id IN "
            "(SELECT id FROM cssm_portal_productinstance WHERE lab_id = %s)",
            [lab.pk],
        )
        appliance_ids = list(lab.appliances.values_list("pk", flat=True))
        Event.objects.bulk_create(
            [Event(lab=lab, at=now, side="gateway", kind="bench.raw", message="Renew authorization ... successful",
                   appliance_id=appliance_ids[i % len(appliance_ids)]) for i in range(n_events)],
            batch_size=5000,
        )  # fmt: skip
        ApplianceAlert.objects.bulk_create(
            [ApplianceAlert(appliance_id=appliance_ids[i % len(appliance_ids)], kind="authorized", code="0",
                            severity="Information", text="raw", at=now) for i in range(n_alerts)],
            batch_size=5000,
        )  # fmt: skip
        MailMessage.objects.bulk_create(
            [MailMessage(lab=lab, lab_time=now, sender="a@example.com", recipients=["b@example.com"], subject="raw",
                         body_text="raw") for i in range(n_mail)],
            batch_size=5000,
        )  # fmt: skip
        elapsed = time.perf_counter() - t
        transaction.set_rollback(True)
    del CssmAlert
    return elapsed


def bench_time_travel(report: Report) -> None:
    """Advance a year for labs of registered appliances (ratio 4)."""
    from datetime import timedelta

    from django.db import connection

    from licensing_core.clock import lab_now
    from licensing_core.models import Lab
    from licensing_core.sweeps import lab_advance

    rows: dict[int, dict] = {}
    skipped: dict[int, float] = {}
    for n in TT_SIZES:
        lab = Lab.objects.get(slug=f"t{n}")
        if rows and n != TT_SIZES[0]:
            estimate = rows[TT_SIZES[0]]["took"] * n / TT_SIZES[0]
            if estimate > BUDGET:
                skipped[n] = estimate
                log(f"time travel {n}: not run, estimated {estimate:.0f} s")
                continue
        before = _count_rows()
        t = time.perf_counter()
        result = lab_advance(lab=lab, to=lab_now(lab) + timedelta(days=365))
        took = time.perf_counter() - t
        after = _count_rows()
        made = {k: after[k] - before[k] for k in after}
        bulk = _bulk_events(made["events"], lab)
        rows[n] = {"took": took, "made": made, "bulk": bulk, "steps": result.steps, "processed": result.processed}
        log(f"time travel {n}: {took:.1f}s, {result.steps} steps, {made}, bulk events {bulk:.2f}s")
        connection.close()
    lines = [
        "## 4. Time travel: a year for a lab of registered appliances",
        "",
        "`lab_advance` by 365 days (every timer fired in order: authorization renewals over HTTP every 30 days, "
        "ID certificate renewal, alerts and their e-mails), in this process against the server above; one run per "
        "size (a lab can only live through its year once). Baseline: bulk-inserting as many event rows as the "
        "advance wrote.",
        "",
        "| Appliances | Time travel | Steps | Items processed | Rows written | Bulk insert of the events | × bulk |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, v in rows.items():
        rr = v["took"] / v["bulk"] if v["bulk"] else float("nan")
        lines.append(f"| {n:,} | {v['took']:.1f} s | {v['steps']} | {v['processed']:,} | "
                     + ", ".join(f"{k} {c:,}" for k, c in v["made"].items())
                     + f" | {v['bulk']:.2f} s | {rr:.0f}× |")  # fmt: skip
    for n, estimate in skipped.items():
        lines.append(f"| {n:,} | not run: estimated {estimate:.0f} s ({estimate / 60:.0f} min) from the "
                     f"{TT_SIZES[0]:,} run, over the {BUDGET:.0f} s budget | | | | | |")  # fmt: skip
        report.target(f"4. Time travel 365 d, {n:,} appliances, absolute (s), estimated", estimate, 60, fmt="{:.0f}")
    big = max(rows)
    report.target(
        f"4. Time travel 365 d, {big:,} appliances vs bulk event insert", rows[big]["took"] / rows[big]["bulk"], 10
    )
    report.target(f"4. Time travel 365 d, {big:,} appliances, absolute (s)", rows[big]["took"], 60, fmt="{:.0f}")
    if len(rows) > 1:
        report.target("7. Time travel ×10 growth (linear work)", rows[big]["took"] / rows[TT_SIZES[0]]["took"], 12)
    report.add("\n".join(lines))


# --- main -------------------------------------------------------------------------------------------------------------


def main() -> int:
    started = time.monotonic()
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install -y wrk (make bench does this)", file=sys.stderr)
        return 2
    database_create()
    seed()
    import django

    django.setup()
    from django.db import connection

    report = Report()
    cookie = session_cookie()
    connection.close()
    with gunicorn(PORT, 2):
        for name, fn in (
            ("pages", lambda: bench_pages(report, cookie)),
            ("fleet", lambda: bench_fleet_pages(report, cookie)),
            ("floor", lambda: bench_floor(report, cookie)),
            ("register", lambda: bench_register(report)),
            ("sweeps", lambda: bench_sweeps(report)),
            ("timetravel", lambda: bench_time_travel(report)),
        ):
            if name in SKIP:
                continue
            log(f"--- {name}")
            try:
                fn()
            except Exception as exc:  # a broken section is reported, the others still run
                log(f"{name} failed: {exc!r}")
                report.add(f"## {name}\n\nFailed in this run: `{exc!r}`")
            report.write(started)
    if "csv" not in SKIP:
        log("--- csv")
        try:
            bench_csv(report, cookie)
        except Exception as exc:
            log(f"csv failed: {exc!r}")
            report.add(f"## csv\n\nFailed in this run: `{exc!r}`")
    report.write(started)
    return 0


if __name__ == "__main__":
    sys.exit(main())

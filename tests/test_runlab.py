"""`manage.py runlab` brings up web, worker and beat, and Ctrl-C stops them all."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> set[int]:
    """All processes whose ancestry leads to pid (from /proc, no psutil)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents[int(entry.name)] = ppid
    found, frontier = set(), {pid}
    while frontier:
        children = {p for p, pp in parents.items() if pp in frontier}
        frontier = children - found
        found |= children
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
def test_runlab_serves_runs_beat_and_stops_everything_on_ctrl_c(tmp_path):
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}},
        "LAB_VAR_DIR": str(tmp_path),
        "LAB_PORT": str(port),
        "LAB_HEARTBEAT_SECONDS": "1",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=180)
    lab = subprocess.Popen(
        [sys.executable, "manage.py", "runlab"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        health = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    health = json.load(response)
                    break
            except OSError:
                time.sleep(0.5)
        assert health == {"database": "ok", "broker": "ok", "status": "ok", "broker_transport": "filesystem"}

        # Beat ticks every second; the worker records each tick in the database.
        heartbeats = 0
        check = "from licensing_core.models import JobRun; print(JobRun.objects.filter(kind='heartbeat').count())"
        while time.monotonic() < deadline and heartbeats == 0:
            out = subprocess.run(
                [sys.executable, "manage.py", "shell", "--no-imports", "-c", check],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            heartbeats = int(out.stdout.strip().splitlines()[-1] or 0)
            time.sleep(1)
        assert heartbeats > 0, "beat and worker did not record a heartbeat"

        children = _descendants(lab.pid)
        assert len(children) >= 3
    finally:
        lab.send_signal(signal.SIGINT)
        output = lab.communicate(timeout=60)[0].decode()
    assert "Smart Licensing Lab is running at" in output
    assert "Stopped the web server, the worker and beat." in output
    time.sleep(0.5)
    assert [pid for pid in children if _alive(pid)] == []

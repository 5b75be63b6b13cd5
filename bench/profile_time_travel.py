"""Profile time travel in one process: `python bench/profile_time_travel.py LAB [DAYS]`.

The Smart Agent's HTTP posts are routed to Django's test client in this same
process (for the profile only), so one cProfile covers both the appliance
side and the CSSM endpoint. Prints the top functions by cumulative and by own
time. Run against a lab built with seed_fleet (e.g. --registered 20).
"""

import cProfile
import os
import pstats
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402

django.setup()

from django.test import Client  # noqa: E402

from gateway_ui.agent import client as agent_client  # noqa: E402
from licensing_core.clock import lab_now  # noqa: E402
from licensing_core.models import Lab  # noqa: E402
from licensing_core.sweeps import lab_advance  # noqa: E402


class _Response:
    def __init__(self, resp):
        self.status_code = resp.status_code
        self._content = resp.content

    def json(self):
        import json

        return json.loads(self._content)


class _InProcess:
    """Stands in for `requests` inside gateway_ui.agent.client while profiling."""

    Timeout = agent_client.requests.Timeout
    RequestException = agent_client.requests.RequestException
    utils = agent_client.requests.utils

    def __init__(self):
        self.client = Client()

    def post(self, url, data=None, headers=None, **kwargs):
        path = "/" + url.split("/", 3)[3]
        return _Response(self.client.post(path, data, content_type="application/json"))


def main() -> None:
    slug = sys.argv[1]
    days = float(sys.argv[2]) if len(sys.argv) > 2 else 365
    lab = Lab.objects.get(slug=slug)
    agent_client.requests = _InProcess()
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    result = lab_advance(lab=lab, to=lab_now(lab) + timedelta(days=days))
    prof.disable()
    print(f"{slug}: {days} days in {time.perf_counter() - t:.1f} s, {result.steps} steps, {result.processed} items")
    stats = pstats.Stats(prof)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()

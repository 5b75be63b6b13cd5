"""Profile one page in process: `python bench/profile_page.py LAB URL_SUFFIX [USER]`.

URL_SUFFIX is relative to the lab's Fleet virtual account, e.g. "" (General),
"licenses/", "instances/", or "../../alerts/" for the Smart Account's Alerts.
Prints the slowest SQL statements and the top functions by cumulative time.
Run against a lab built with seed_fleet (the bench database, e.g.
DATABASE_URL=postgres://postgres@127.0.0.1:5432/smartlab_bench).
"""

import cProfile
import os
import posixpath
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from cssm_portal.models import SmartAccount, VirtualAccount  # noqa: E402


def main() -> None:
    slug, suffix = sys.argv[1], sys.argv[2]
    username = sys.argv[3] if len(sys.argv) > 3 else "bench"
    sa = SmartAccount.objects.filter(lab__slug=slug).order_by("pk").first()
    va = VirtualAccount.objects.get(smart_account=sa, name="Fleet")
    url = posixpath.normpath(f"/cssm/{slug}/{sa.pk}/inventory/{va.pk}/{suffix}") + "/"
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    assert client.get(url).status_code == 200  # warm-up
    prof = cProfile.Profile()
    with CaptureQueriesContext(connection) as ctx:
        t = time.perf_counter()
        prof.enable()
        response = client.get(url)
        prof.disable()
        took = time.perf_counter() - t
    sql = sum(float(q["time"]) for q in ctx.captured_queries)
    n = len(ctx.captured_queries)
    print(f"{url}: {response.status_code} in {took * 1000:.0f} ms, {n} queries, {sql * 1000:.0f} ms in SQL")
    for q in sorted(ctx.captured_queries, key=lambda q: -float(q["time"]))[:5]:
        print(f"  {float(q['time']) * 1000:7.0f} ms  {q['sql'][:160]}")
    pstats.Stats(prof).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()

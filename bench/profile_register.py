"""Profile Smart Agent registration in process: `python bench/profile_register.py [N]`.

Registers N (default 300) new products through the endpoint (Django's test
client, so the whole request path runs: middleware, JSON, token check,
certificate issuance, writes) against the bench database's "reg" lab, then
prints the statements one registration runs and the top functions by
cumulative time. Run with DATABASE_URL pointing at the bench database.
"""

import cProfile
import json
import os
import pstats
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from cssm_portal import services as cssm  # noqa: E402
from cssm_portal.models import VirtualAccount  # noqa: E402
from licensing_core import pki  # noqa: E402
from licensing_core.catalogue import make_udi  # noqa: E402
from licensing_core.clock import lab_now  # noqa: E402
from licensing_core.models import Lab  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    lab = Lab.objects.get(slug="reg")
    va = VirtualAccount.objects.get(smart_account__lab=lab, name="Fleet")
    now = lab_now(lab)
    token = cssm.token_create(va=va, actor="bench", description="profile", expire_days=365, max_uses=None,
                              export_controlled=False, now=now).value  # fmt: skip
    key = pki.make_device_key()

    def body() -> str:
        serial = f"PRF{secrets.token_hex(6).upper()}"
        udi = make_udi("C395", serial)
        host = f"{serial.lower()}.example.com"
        return json.dumps({
            "protocol": "smart-agent/1", "lab": lab.slug, "type": "register", "udi": udi,
            "sent_at": now.isoformat(), "nonce": secrets.token_hex(16),
            "body": {"token": token, "csr": pki.make_csr(key_pem=key, common_name=host, udi=udi).decode(),
                     "hostname": host, "product": "ESA", "pid": "C395", "serial": serial,
                     "software_version": "16.0.0-000", "agent_version": "1.3.7", "force": False},
        })  # fmt: skip

    bodies = [body() for _ in range(n + 1)]
    client = Client()

    def post(b: str):
        r = client.post("/licservice/license", b, content_type="application/json")
        assert r.status_code == 200, r.content
        return r

    post(bodies.pop())  # warm-up
    t = time.perf_counter()
    for b in bodies[:200]:
        assert client.post("/bench/json/", b, content_type="application/json").status_code == 200
    bare = (time.perf_counter() - t) / 200
    print(f"bare JSON endpoint: {bare * 1000:.2f} ms each")
    with CaptureQueriesContext(connection) as ctx:
        post(bodies[0])
    print(f"one registration: {len(ctx.captured_queries)} statements")
    for q in ctx.captured_queries:
        print(f"  {float(q['time']) * 1000:6.2f} ms  {q['sql'][:150]}")
    half = len(bodies) // 2
    t = time.perf_counter()
    for b in bodies[1:half]:
        post(b)
    took = time.perf_counter() - t
    print(f"{half - 1} registrations in {took:.2f} s: {took / (half - 1) * 1000:.2f} ms each (not profiled)")
    bodies = bodies[half - 1 :]
    n = len(bodies)
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    for b in bodies[1:]:
        post(b)
    prof.disable()
    took = time.perf_counter() - t
    print(f"{n - 1} registrations in {took:.2f} s: {took / (n - 1) * 1000:.2f} ms each (profiled)")
    pstats.Stats(prof).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(int(os.environ.get("TOP", "45")))


if __name__ == "__main__":
    main()

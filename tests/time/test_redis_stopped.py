"""Redis stopped while people work: every page still serves, the action is
recorded, and a real worker and beat carry it out once Redis is back."""

import shutil
import subprocess
import time

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from gateway_ui import services
from gateway_ui.clock import appliance_now
from gateway_ui.models import Appliance
from licensing_core.models import JobRun
from licensing_core.roles import GatewayRole
from tests.time.support import broker_use, celery, celery_env, free_port, stop, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


class RedisServer:
    """A Redis of the test's own, on its own port, that can be stopped and started."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.dir = tmp_path
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        wait_until(lambda: _ping(redis, self.url), timeout=20, message="redis-server to start")

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None


def _ping(redis, url) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.exceptions.RedisError:
        return False


@pytest.fixture
def own_redis(tmp_path, monkeypatch):
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is not installed (.ci/run installs it)")
    server = RedisServer(tmp_path)
    server.start()
    undo = broker_use(server.url, monkeypatch)
    yield server
    server.stop()
    undo()


def test_pages_serve_while_redis_is_down_and_the_action_runs_when_it_is_back(
    frozen_lab, client, own_redis, settings, tmp_path
):
    esa = Appliance.objects.get(lab=frozen_lab, hostname="esa1.example.com")
    now = appliance_now(esa)
    services.sl_enable(appliance=esa, user=None, now=now)
    services.changes_commit(appliance=esa, user=None, role=GatewayRole.ADMINISTRATOR, now=now)
    Appliance.objects.filter(pk=esa.pk).update(agent_version="1.0.0")  # an update is available

    env = celery_env(
        CELERY_BROKER_URL=own_redis.url,
        LAB_VAR_DIR=str(tmp_path),
        LAB_SWEEP_SECONDS="1",
        LAB_EXCHANGE_RECOVERY_SECONDS="2",
        EMAIL_HOST="",
    )
    worker = celery("worker", "--pool", "solo", "--loglevel", "INFO", env=env, log=tmp_path / "worker.log")
    beat = celery("beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "beat"), env=env, log=tmp_path / "b.log")
    try:
        own_redis.stop()
        client.force_login(get_user_model().objects.get(username="admin"))
        pages = [
            reverse("gateway:smart_licensing", args=[frozen_lab.slug, esa.hostname]),
            reverse("gateway:licenses", args=[frozen_lab.slug, esa.hostname]),
            reverse("cssm:home", args=[frozen_lab.slug]),
            reverse("labs:detail", args=[frozen_lab.slug]),
            "/",
        ]
        for page in pages:
            assert client.get(page, follow=True).status_code == 200, page
        started = time.monotonic()
        response = client.post(reverse("gateway:sl_agent_update", args=[frozen_lab.slug, esa.hostname]))
        assert response.status_code == 302  # recorded; the broker being down is not the user's problem
        assert time.monotonic() - started < 10  # the page gave up on the broker quickly
        esa.refresh_from_db()
        assert esa.agent_update_state == "updating"
        assert esa.exchange_requested_at is not None

        own_redis.start()  # Redis is back; beat and the worker reconnect

        def carried_out():
            esa.refresh_from_db()
            return esa.exchange_requested_at is None and esa.agent_update_state != "updating"

        wait_until(carried_out, timeout=120, interval=0.5, message="the recorded update to be carried out")
    finally:
        stop(beat)
        stop(worker)
    assert esa.agent_version == settings.SMART_AGENT_VERSION
    assert JobRun.objects.filter(kind="agent_update", subject_id=esa.pk).count() == 1

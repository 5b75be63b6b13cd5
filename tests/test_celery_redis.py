"""A task pushed through a real Celery worker on Redis changes the database."""

import os
import time
import uuid

import pytest
import redis

REDIS_URL = os.environ.get("LAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


def _redis_available() -> bool:
    try:
        return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.RedisError:
        return False


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_on_redis_records_a_heartbeat(monkeypatch):
    if not _redis_available():
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable at {REDIS_URL}; .ci/run should have started it")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: start redis-server to run this test")
    import celery.contrib.testing.tasks  # noqa: F401  (registers the ping task start_worker waits for)
    from celery.contrib.testing.worker import start_worker

    from config.celery import app
    from licensing_core.models import JobRun, JobTrigger
    from licensing_core.tasks import heartbeat_task
    from tests.time.support import broker_use

    undo = broker_use(REDIS_URL, monkeypatch)
    try:
        # A queue of its own, so a concurrent run on the same Redis cannot take the message.
        queue = f"test-heartbeat-{uuid.uuid4().hex}"
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10, queues=[queue]):
            # An explicit connection: the app's producer pool may already hold
            # a connection to the suite's default broker from earlier tests.
            with app.connection_for_write(REDIS_URL) as connection:
                heartbeat_task.apply_async(kwargs={"trigger": JobTrigger.GUI}, connection=connection, queue=queue)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not JobRun.objects.filter(kind="heartbeat").exists():
                time.sleep(0.1)
    finally:
        undo()
    run = JobRun.objects.get(kind="heartbeat")
    assert run.trigger == JobTrigger.GUI
    assert run.status == "succeeded"

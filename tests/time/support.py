"""Test helpers for background work: a restartable SMTP server (aiosmtpd), a
Transport Gateway relay that can be taken down, Redis and Celery subprocesses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("LAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
TRANSPORT_GATEWAY_PATH = "/Transportgateway/services/DeviceRequestHandler"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(envelope)
        return "250 OK"


class SmtpServer:
    """A real SMTP server (aiosmtpd) that can be stopped and started again."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.sink = Sink()
        self.controller = None

    def start(self):
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self):
        return self.sink.messages

    def subjects(self) -> list[str]:
        import re
        from email import message_from_bytes
        from email.header import decode_header, make_header

        raw = [message_from_bytes(m.content)["Subject"] for m in self.messages]
        return [re.sub(r"\r?\n(?=[ \t])", "", str(make_header(decode_header(s)))) for s in raw]


def smtp_settings(settings, server: SmtpServer) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.port, 5


class TransportGatewayRelay:
    """A stand-in Transport Gateway: relays each Smart Agent POST to the
    portal's transport gateway endpoint. `stop()` makes it unreachable
    (connection refused), as a gateway that went down."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/") + TRANSPORT_GATEWAY_PATH
        self.server: ThreadingHTTPServer | None = None
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{TRANSPORT_GATEWAY_PATH}"

    def start(self):
        upstream = self.upstream

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "x-request-id")}
                answer = requests.post(upstream, data=body, headers=headers, timeout=30)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def redis_available(url: str = REDIS_URL) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.exceptions.RedisError:
        return False


def require_redis(url: str = REDIS_URL) -> None:
    import pytest

    if not redis_available(url):
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable at {url}; .ci/run should have started it")
        pytest.skip(f"Redis is not reachable at {url}: start redis-server to run this test")


def redis_flush(url: str = REDIS_URL) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def celery_env(**extra: str) -> dict[str, str]:
    """Environment for a `celery -A config` subprocess sharing the test database."""
    from django.conf import settings
    from django.db import connection

    env = dict(os.environ)
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{connection.settings_dict['NAME']}"
    else:
        user = db.get("USER") or "postgres"
        host = db.get("HOST") or "127.0.0.1"
        port = db.get("PORT") or 5432
        env["DATABASE_URL"] = f"postgres://{user}@{host}:{port}/{connection.settings_dict['NAME']}"
    env.update(
        CELERY_BROKER_URL=REDIS_URL,
        CELERY_TASK_ALWAYS_EAGER="false",
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def celery(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = open(log, "ab")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", *args],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen, *, sig: int | None = None, timeout: float = 20) -> None:
    import signal

    if process.poll() is not None:
        return
    process.send_signal(sig or signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def wait_until(condition, *, timeout: float, interval: float = 0.2, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout} s waiting for {message}")


def broker_use(url: str, monkeypatch):
    """Point the in-process Celery app at `url`, not eager; returns an undo.

    Celery lets the CELERY_BROKER_URL environment variable win over app.conf,
    and keeps producer pools of the old broker: all three are switched."""
    from config.celery import app

    monkeypatch.setenv("CELERY_BROKER_URL", url)
    saved = {k: app.conf[k] for k in ("broker_url", "task_always_eager", "broker_transport_options")}
    app.conf.update(broker_url=url, task_always_eager=False, broker_transport_options={})
    app._pool = None
    app.amqp._producer_pool = None

    def undo():
        app.conf.update(saved)
        app._pool = None
        app.amqp._producer_pool = None

    return undo

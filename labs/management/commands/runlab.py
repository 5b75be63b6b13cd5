"""Run the whole lab in the foreground: web server, Celery worker and beat.

Ctrl-C (or SIGTERM) stops all three and waits for them, so nothing is left
running. Each child runs in its own process group so that its own children
(gunicorn and Celery pool processes) are stopped with it.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from labs.demo import DEMO_PASSWORD, DEMO_USERS

STOP_GRACE_SECONDS = 10


class Command(BaseCommand):
    help = "Start the web server, a Celery worker and Celery beat together; Ctrl-C stops all three."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("LAB_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("LAB_PORT", "8000")))

    def handle(self, *args, host: str, port: int, **options):
        python = sys.executable
        commands = {
            "web": [
                python, "-m", "gunicorn", "config.wsgi:application",
                "--bind", f"{host}:{port}", "--workers", "2", "--threads", "4",
                "--access-logfile", "-", "--graceful-timeout", "5",
            ],
            "worker": [python, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO", "--concurrency", "2"],
            "beat": [
                python, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
                "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME,
            ],
        }  # fmt: skip
        children: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(signum=None, frame=None):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            for name, command in commands.items():
                children[name] = subprocess.Popen(command, start_new_session=True)
            self._banner(host, port)
            while not stopping:
                for name, child in children.items():
                    if child.poll() is not None:
                        self.stderr.write(f"{name} exited with status {child.returncode}; stopping the lab.")
                        stopping = True
                        break
                time.sleep(0.5)
        finally:
            self._stop_all(children)

    def _banner(self, host: str, port: int) -> None:
        self.stdout.write(self.style.SUCCESS(f"\nSmart Licensing Lab is running at http://{host}:{port}/"))
        self.stdout.write(f"Broker: {settings.CELERY_BROKER_URL.split('://')[0]}; database: "
                          f"{settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}")  # fmt: skip
        self.stdout.write(f"Demo logins (password {DEMO_PASSWORD!r}): " + ", ".join(DEMO_USERS))
        self.stdout.write("Press Ctrl-C to stop the web server, the worker and beat.\n")

    def _stop_all(self, children: dict[str, subprocess.Popen]) -> None:
        for child in children.values():
            if child.poll() is None:
                _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in children.values():
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _signal_group(child, signal.SIGKILL)
                child.wait()
        # Pool processes may outlive their parent for a moment; sweep the groups.
        for child in children.values():
            _signal_group(child, signal.SIGKILL)
        self.stdout.write("Stopped the web server, the worker and beat.")


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signum)

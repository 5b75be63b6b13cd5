"""Project-wide test fixtures: personas, the demo lab, Chromium for Playwright."""

import os
import shutil

import pytest

CHROMIUM = os.environ.get("LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Playwright's sync API runs an event loop in the test thread; Django's
# async-safety check would otherwise refuse ORM calls made by live_server tests.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items):
    """Browser tests need Debian's Chromium. Locally they skip with a message
    naming the package; on CI (.ci/run sets LAB_REQUIRE_BROWSER=1) a missing
    browser is a failure, so nothing is skipped there."""
    if shutil.which(CHROMIUM) or os.path.exists(CHROMIUM):
        return
    if os.environ.get("LAB_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    skip = pytest.mark.skip(reason=f"Chromium not found at {CHROMIUM}: apt-get install -y chromium")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}


@pytest.fixture(autouse=True)
def _eager_celery(settings):
    # Unit tests run tasks in-process; the tests that need a real worker say so.
    # A fast hasher: the demo lab creates eleven users per test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from config.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def demo_lab(db):
    from labs.demo import demo_lab_build

    return demo_lab_build()


@pytest.fixture
def demo_password():
    from labs.demo import DEMO_PASSWORD

    return DEMO_PASSWORD


@pytest.fixture
def login_as(client, demo_lab):
    """Log the test client in as one of the demo users: login_as("va-user")."""
    from django.contrib.auth import get_user_model

    def _login(username: str):
        user = get_user_model().objects.get(username=username)
        client.force_login(user)
        return user

    return _login

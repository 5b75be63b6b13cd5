"""Fixtures for the time tests: a frozen demo lab, an SMTP server, a registered appliance."""

import pytest

from tests.time.support import SmtpServer, smtp_settings


@pytest.fixture
def smtp(settings):
    server = SmtpServer()
    smtp_settings(settings, server)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def frozen_lab(demo_lab):
    from licensing_core.clock import clock_freeze, clock_set

    clock_freeze(lab=demo_lab)
    # A fixed, round start so the expected dates read plainly.
    from datetime import UTC, datetime

    from licensing_core.clock import lab_now

    start = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    if lab_now(demo_lab) < start:
        clock_set(lab=demo_lab, to=start)
    return demo_lab

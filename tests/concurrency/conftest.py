"""Concurrency tests run real concurrent requests through Django's WSGI handler
(one test Client per thread, so one database connection per thread) on PostgreSQL.
SQLite serialises every writer, so a pass there proves nothing: they are marked
`postgres`, .ci/run leaves them out of its SQLite pass, and a local SQLite run skips them."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections


@pytest.fixture(autouse=True)
def _postgresql_only(db):
    if connection.vendor != "postgresql":
        pytest.skip(
            "Concurrency tests need PostgreSQL (row locks, concurrent writers): set DATABASE_URL to a "
            "postgres:// URL, as .ci/run does."
        )


def run_concurrently(jobs, *, workers=24):
    """Run callables from `workers` threads at once (the first wave is released
    together). Returns the results in order. Each thread closes the database
    connection Django opened for it."""
    go = threading.Event()

    def call(job):
        go.wait(timeout=60)
        try:
            return job()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(call, job) for job in jobs]
        go.set()
        return [f.result() for f in futures]

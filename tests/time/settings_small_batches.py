"""Settings for a Celery worker whose sweep fires appliances five at a time
(gateway_ui.sweeps claims and commits a batch at once), so that a worker
killed part-way through a sweep of 60 appliances has committed some batches
and not others."""

from config.settings import *  # noqa: F403

LAB_SWEEP_BATCH_SIZE = 5

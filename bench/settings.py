"""Settings for the benchmark server: the project's settings plus the two
bare baseline views (bench/urls.py). Used only by `make bench`:

    gunicorn config.wsgi --env DJANGO_SETTINGS_MODULE=bench.settings
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
LAB_BENCH_ENDPOINTS = True

"""The project's URLs plus the benchmark baselines (bench.settings only)."""

from django.urls import path

from bench import views
from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("bench/floor/", views.floor, name="bench_floor"),
    path("bench/json/", views.bare_json, name="bench_json"),
    *project_urlpatterns,
]

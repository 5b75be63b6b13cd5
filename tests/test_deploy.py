"""The production profile passes Django's deployment checks with no warning,
and refuses to start without a real secret."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args, env_overrides, tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update({"LAB_VAR_DIR": str(tmp_path), **env_overrides})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_it_passes_check_deploy_in_production(tmp_path):
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env_overrides={
            "LAB_PROFILE": "production",
            "SECRET_KEY": "k" * 20 + "9f3b2c1d8e7a6f5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b",
            "ALLOWED_HOSTS": "lab.example.com",
        },
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_it_refuses_production_without_a_secret_key(tmp_path):
    result = _manage("check", env_overrides={"LAB_PROFILE": "production"}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_migrations_match_the_models(tmp_path):
    result = _manage("makemigrations", "--check", "--dry-run", env_overrides={}, tmp_path=tmp_path)
    assert result.returncode == 0, "Models changed without a migration:\n" + result.stdout

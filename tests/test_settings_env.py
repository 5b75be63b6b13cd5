"""The typed environment parsers fail loudly on bad values."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from config import env


def test_it_reads_booleans(monkeypatch):
    monkeypatch.setenv("X_FLAG", "Yes")
    assert env.env_bool("X_FLAG", False) is True
    monkeypatch.setenv("X_FLAG", "0")
    assert env.env_bool("X_FLAG", True) is False
    monkeypatch.delenv("X_FLAG")
    assert env.env_bool("X_FLAG", True) is True


def test_it_refuses_a_bad_boolean(monkeypatch):
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG='maybe' is not a boolean"):
        env.env_bool("X_FLAG", False)


def test_it_refuses_a_bad_or_small_integer(monkeypatch):
    monkeypatch.setenv("X_PORT", "eighty")
    with pytest.raises(ImproperlyConfigured, match="not a whole number"):
        env.env_int("X_PORT", 1)
    monkeypatch.setenv("X_PORT", "-1")
    with pytest.raises(ImproperlyConfigured, match="must be at least 0"):
        env.env_int("X_PORT", 1, minimum=0)


def test_it_requires_a_string_without_default(monkeypatch):
    monkeypatch.delenv("X_SECRET", raising=False)
    with pytest.raises(ImproperlyConfigured, match="X_SECRET is required"):
        env.env_str("X_SECRET")


def test_it_reads_a_secret_from_a_file(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    monkeypatch.setenv("X_SECRET", "from-env")
    monkeypatch.setenv("X_SECRET_FILE", str(secret))
    assert env.env_str("X_SECRET") == "from-file"
    monkeypatch.setenv("X_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        env.env_str("X_SECRET")


def test_it_splits_lists_and_checks_choices(monkeypatch):
    monkeypatch.setenv("X_HOSTS", "a.example.com, b.example.com,,")
    assert env.env_list("X_HOSTS", []) == ["a.example.com", "b.example.com"]
    monkeypatch.setenv("X_PROFILE", "staging")
    with pytest.raises(ImproperlyConfigured, match="must be one of"):
        env.env_choice("X_PROFILE", "development", ("development", "production"))

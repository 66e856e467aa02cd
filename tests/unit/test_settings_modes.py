"""The settings fail closed: production needs its mode and every secret from the
environment, the embedded default generates its own, and `check --deploy` is clean for the
documented production environment. Each case runs the real settings in a fresh process."""

import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(REPO_ROOT),
        "DJANGO_SETTINGS_MODULE": "kiosk.settings",
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def show_keys(env: dict[str, str]) -> list[str]:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECRET_KEY); print(s.AUDIT_CHECKPOINT_KEY); print(s.AUDIT_PII_KEY)"
    )
    result = run(env, "-c", code)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def production_env(tmp_path: Path) -> dict[str, str]:
    """deploy/kiosk.env.example's variables with real secrets."""
    return {
        "KIOSK_EMBEDDED": "0",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "AUDIT_CHECKPOINT_KEY": secrets.token_hex(32),
        "AUDIT_PII_KEY": secrets.token_hex(32),
        "DJANGO_ALLOWED_HOSTS": "kiosk.example.org",
        "DJANGO_CSRF_TRUSTED_ORIGINS": "https://kiosk.example.org",
        "DATABASE_URL": "postgres://kiosk@127.0.0.1:5432/kiosk",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "MEDIA_ENGINE_IN_PROCESS": "0",
        "KIOSK_VAR_DIR": str(tmp_path / "var"),
        "AUDIT_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
    }


@pytest.mark.parametrize("service", ["DATABASE_URL", "REDIS_URL"])
def test_an_external_service_without_a_mode_refuses_to_start(tmp_path, service):
    url = {"DATABASE_URL": "postgres://kiosk@127.0.0.1/kiosk", "REDIS_URL": "redis://127.0.0.1"}
    result = run({service: url[service], "KIOSK_VAR_DIR": str(tmp_path)}, "manage.py", "check")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{service} set but KIOSK_EMBEDDED is not" in result.stderr
    assert "KIOSK_EMBEDDED=0" in result.stderr  # the message names the fix
    assert not (tmp_path / "secrets").exists()  # and nothing was generated


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "AUDIT_CHECKPOINT_KEY", "AUDIT_PII_KEY"])
def test_production_refuses_to_start_without_each_secret(tmp_path, missing):
    env = production_env(tmp_path)
    del env[missing]
    result = run(env, "manage.py", "check")
    assert result.returncode != 0
    assert f"{missing} must be set when KIOSK_EMBEDDED=0" in result.stderr


def test_production_refuses_a_short_secret_and_debug(tmp_path):
    env = {**production_env(tmp_path), "AUDIT_CHECKPOINT_KEY": "change-me"}
    assert "AUDIT_CHECKPOINT_KEY is shorter" in run(env, "manage.py", "check").stderr
    env = {**production_env(tmp_path), "DJANGO_DEBUG": "1"}
    assert "DJANGO_DEBUG=1 is refused" in run(env, "manage.py", "check").stderr


def test_check_deploy_is_clean_for_the_documented_production_environment(tmp_path):
    result = run(
        production_env(tmp_path), "manage.py", "check", "--deploy", "--fail-level", "WARNING"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_embedded_default_generates_its_secrets_once_in_its_var_dir(tmp_path):
    first = show_keys({"KIOSK_VAR_DIR": str(tmp_path / "a")})
    again = show_keys({"KIOSK_VAR_DIR": str(tmp_path / "a")})
    other = show_keys({"KIOSK_VAR_DIR": str(tmp_path / "b"), "KIOSK_EMBEDDED": "1"})
    assert first == again  # reused
    assert len(set(first)) == 3  # three independent keys: none derived from another
    assert all(len(key) >= 64 for key in first)
    assert set(first).isdisjoint(other)  # random per var dir, never a constant
    for name in ("django_secret_key", "audit_checkpoint_key", "audit_pii_key"):
        mode = stat.S_IMODE((tmp_path / "a" / "secrets" / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))

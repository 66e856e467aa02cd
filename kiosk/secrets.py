"""Where the service's secrets come from: the environment in production, a file generated on
first run in the var directory for the embedded default. No key is a constant in the code.

Used by ``kiosk.settings`` (so it imports nothing from Django but its exception).
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

SECRETS_DIRNAME = "secrets"


def required(name: str, why: str, min_length: int = 32) -> str:
    """The value of environment variable ``name``; ImproperlyConfigured when it is missing or
    too short to be a secret."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(
            f"{name} must be set when KIOSK_EMBEDDED=0 ({why}); generate one with "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
    if len(value) < min_length:
        raise ImproperlyConfigured(f"{name} is shorter than {min_length} characters")
    return value


def generated(var_dir: Path, name: str, nbytes: int = 48) -> str:
    """A random secret kept in ``var_dir/secrets/<name>`` (mode 0600), created on first use
    and the same afterwards (every process of one checkout reads the same file)."""
    directory = Path(var_dir) / SECRETS_DIRNAME
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / name
    value = secrets.token_hex(nbytes)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    try:
        os.write(fd, (value + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return value


def _read(path: Path) -> str:
    # Another process may have created it a moment ago and still be writing its one line.
    for _attempt in range(50):
        value = path.read_text(encoding="ascii").strip()
        if value:
            return value
        time.sleep(0.02)
    raise ImproperlyConfigured(f"{path} is empty: delete it to have a new secret generated")


def from_env_or_generated(embedded: bool, var_dir: Path, name: str, why: str) -> str:
    """``name`` from the environment when set; else generated (embedded) or refused."""
    value = os.environ.get(name, "").strip()
    if value:
        if not embedded and len(value) < 32:
            raise ImproperlyConfigured(f"{name} is shorter than 32 characters")
        return value
    if embedded:
        return generated(var_dir, name.lower())
    return required(name, why)

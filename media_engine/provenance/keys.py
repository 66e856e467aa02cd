"""The provenance keys: which one marks, and which ones the verifier tries.

``PROVENANCE_KEY`` holds one or more keys, ``"id:secret"`` separated by commas, the current
key first: new frames are marked with it, and every listed key is tried when verifying, so
rotating a key (put the new one first, keep the old one after it) keeps old marks
verifiable. A secret is at least 32 characters (``secrets.token_hex(32)`` makes one).
Without ``PROVENANCE_KEY`` (the embedded default only: settings refuse to start without it
in production) a key is generated once into ``PROVENANCE_KEY_FILE`` (mode 0600) and read
from there afterwards.
"""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

MIN_SECRET_CHARS = 32


class KeyringError(ValueError):
    """``PROVENANCE_KEY`` (or the key file) cannot be read."""


@dataclass(frozen=True)
class Key:
    key_id: str
    secret: bytes


def parse_keys(text: str) -> tuple[Key, ...]:
    """The keys in ``text`` (``"id:secret,id:secret"``), the current one first."""
    keys = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key_id, sep, secret = item.partition(":")
        if not sep or not key_id.strip() or len(secret.strip()) < MIN_SECRET_CHARS:
            raise KeyringError(
                f"a provenance key is 'id:secret' with a secret of at least "
                f"{MIN_SECRET_CHARS} characters, got {key_id.strip()[:16]!r}..."
            )
        keys.append(Key(key_id.strip(), secret.strip().encode()))
    if not keys:
        raise KeyringError("no provenance key given")
    if len({key.key_id for key in keys}) != len(keys):
        raise KeyringError("two provenance keys have the same id")
    return tuple(keys)


def generated_key_text(path: Path) -> str:
    """The key text in ``path``, written there first (0600) when missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        text = f"k1:{secrets.token_hex(32)}\n"
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process wrote it first: read theirs
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(text)
    return path.read_text().strip()


def configured_keys() -> tuple[Key, ...]:
    """The keys from the settings (``PROVENANCE_KEY`` or the embedded default's file)."""
    from django.conf import settings

    text = settings.PROVENANCE_KEY or generated_key_text(Path(settings.PROVENANCE_KEY_FILE))
    return parse_keys(text)


def installation() -> str:
    """The name this installation reports in verifications."""
    from django.conf import settings

    return settings.PROVENANCE_INSTALLATION

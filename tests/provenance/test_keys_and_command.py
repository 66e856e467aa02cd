"""Keys (parsing, generation, rotation), the production requirement, and the command."""

import json
import os
import subprocess
import sys
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from media_engine.provenance.keys import KeyringError, generated_key_text, parse_keys
from tests.conftest import REPO_ROOT
from tests.provenance.support import camera_frames, fused_frames, png

OLD = "old:" + "a" * 64
NEW = "new:" + "b" * 64


def test_keys_parse_with_the_current_one_first():
    keys = parse_keys(f"{NEW}, {OLD}")
    assert [k.key_id for k in keys] == ["new", "old"]
    assert keys[1].secret == b"a" * 64


@pytest.mark.parametrize(
    "text", ["", "no-colon" + "x" * 40, "k1:short", f"{OLD},{OLD}", ":" + "c" * 40]
)
def test_bad_keys_are_a_clear_error(text):
    with pytest.raises(KeyringError):
        parse_keys(text)


def test_the_embedded_default_generates_its_key_once(tmp_path):
    path = tmp_path / "var" / "provenance.key"
    first = generated_key_text(path)
    assert parse_keys(first)[0].key_id == "k1"
    assert generated_key_text(path) == first
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_production_refuses_to_start_without_the_key(tmp_path):
    env = {
        **os.environ,
        "KIOSK_EMBEDDED": "0",
        "DJANGO_SECRET_KEY": "x" * 50,
        "AUDIT_CHECKPOINT_KEY": "y" * 64,
        "AUDIT_PII_KEY": "z" * 64,
        "KIOSK_VAR_DIR": str(tmp_path),
    }
    env.pop("PROVENANCE_KEY", None)
    result = subprocess.run(
        [sys.executable, "-c", "import kiosk.settings"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "PROVENANCE_KEY must be set" in result.stderr


@pytest.mark.django_db
def test_rotation_keeps_old_marks_verifiable(settings, tmp_path, capsys):
    settings.PROVENANCE_KEY = OLD
    frame = fused_frames(str(uuid.uuid4()), 2, engine="label")[-1]
    settings.PROVENANCE_KEY = f"{NEW},{OLD}"
    path = tmp_path / "old.png"
    path.write_bytes(png(frame))
    call_command("provenance_verify", str(path))
    answer = json.loads(capsys.readouterr().out.strip())
    assert answer["ai_generated"] is True and answer["file"] == str(path)
    # A key that never marked it finds nothing.
    settings.PROVENANCE_KEY = NEW
    call_command("provenance_verify", str(path))
    assert json.loads(capsys.readouterr().out.strip())["ai_generated"] is False


@pytest.mark.django_db
def test_the_command_reports_unreadable_files_and_fails(tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a picture")
    good = tmp_path / "camera.png"
    good.write_bytes(png(camera_frames(1)[0]))
    with pytest.raises(CommandError, match="2 of 3 files"):
        call_command("provenance_verify", str(bad), str(tmp_path / "missing.png"), str(good))
    out, err = capsys.readouterr()
    assert "not a picture or a video" in err and "No such file" in err
    assert json.loads(out.strip())["ai_generated"] is False

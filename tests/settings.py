"""Settings of the test suite: the service's own settings in the embedded default's mode,
on the real PostgreSQL and Redis the suite is given (``DATABASE_URL``, ``TEST_REDIS_URL``).

With an external service configured, ``kiosk.settings`` refuses to start unless the mode is
said explicitly (it fails closed); the suite says ``KIOSK_EMBEDDED=1``, and the processes it
starts inherit that (``tests.conftest.child_env``).
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("KIOSK_EMBEDDED", "1")

from kiosk.settings import *  # noqa: F403

# This process signs the chain heads of its test databases: keep them out of var/ (a head left
# by an earlier run would be "a truncated tail" to this one). Child processes keep their own
# default (their KIOSK_VAR_DIR), and tests that verify set a directory of their own.
if "AUDIT_CHECKPOINT_DIR" not in os.environ:
    AUDIT_CHECKPOINT_DIR = Path(tempfile.mkdtemp(prefix="kiosk-test-checkpoints-"))
    # Gone with the process that made it (a process killed with -9 leaves its small one).
    atexit.register(shutil.rmtree, AUDIT_CHECKPOINT_DIR, ignore_errors=True)

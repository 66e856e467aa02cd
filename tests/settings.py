"""Settings of the test suite: the service's own settings in the embedded default's mode,
on the real PostgreSQL and Redis the suite is given (``DATABASE_URL``, ``TEST_REDIS_URL``).

With an external service configured, ``kiosk.settings`` refuses to start unless the mode is
said explicitly (it fails closed); the suite says ``KIOSK_EMBEDDED=1``, and the processes it
starts inherit that (``tests.conftest.child_env``).
"""

import os

os.environ.setdefault("KIOSK_EMBEDDED", "1")

from kiosk.settings import *  # noqa: F403

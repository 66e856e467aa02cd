"""``DATABASE_URL`` to Django's ``DATABASES['default']``, multi-host PostgreSQL included.

    postgres://kiosk:secret@db1:5432,db2:5432/kiosk?target_session_attrs=read-write

lists every server of a replicated PostgreSQL; psycopg (libpq) tries them in order and keeps
the first that matches ``target_session_attrs`` (``read-write``: the primary), so after a
failover the next connection finds the new primary. A single host goes through
dj-database-url as before.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import dj_database_url

TARGET_SESSION_ATTRS = ("any", "read-write", "read-only", "primary", "standby", "prefer-standby")


class DatabaseUrlError(ValueError):
    """``DATABASE_URL`` cannot be understood."""


def parse_database_url(url: str, *, conn_max_age: int = 60) -> dict[str, Any]:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if "," not in netloc:
        config = dj_database_url.parse(url, conn_max_age=conn_max_age)
        _check_attrs(config.get("OPTIONS", {}).get("target_session_attrs"))
        return config
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        raise DatabaseUrlError("only PostgreSQL takes several hosts in DATABASE_URL")
    user = password = ""
    if "@" in parts.netloc:
        auth = parts.netloc.rsplit("@", 1)[0]
        user, _, password = auth.partition(":")
    hosts, ports = [], []
    for item in netloc.split(","):
        host, _, port = item.partition(":")
        if not host:
            raise DatabaseUrlError(f"an empty host in DATABASE_URL's host list {netloc!r}")
        hosts.append(host)
        ports.append(port or "5432")
    options = dict(parse_qsl(parts.query))
    _check_attrs(options.get("target_session_attrs"))
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(user),
        "PASSWORD": unquote(password),
        "HOST": ",".join(hosts),
        "PORT": ",".join(ports),
        "OPTIONS": options,
        "CONN_MAX_AGE": conn_max_age,
        "CONN_HEALTH_CHECKS": True,
    }


def _check_attrs(value: str | None) -> None:
    if value is not None and value not in TARGET_SESSION_ATTRS:
        raise DatabaseUrlError(
            f"target_session_attrs must be one of {', '.join(TARGET_SESSION_ATTRS)}, not {value!r}"
        )

"""Short-lived TURN credentials: coturn's shared-secret ("TURN REST API") scheme.

username = "<expiry unix seconds>:<kiosk>", password = base64(HMAC-SHA1(secret, username)).
coturn (``use-auth-secret``, ``static-auth-secret`` = ``TURN_SECRET``) computes the same
HMAC and refuses a username whose expiry has passed. Credentials are made per call, only
for an enrolled kiosk (``hello.ice_servers``); the static TURN login is never handed out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from django.conf import settings


def credentials(secret: str, kiosk: str, ttl_s: int, now: float | None = None) -> tuple[str, str]:
    expiry = int(time.time() if now is None else now) + int(ttl_s)
    username = f"{expiry}:{kiosk}"
    return username, password_for(secret, username)


def password_for(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(secret: str, username: str, password: str, now: float | None = None) -> bool:
    """What coturn checks: the HMAC matches and the expiry in the username is ahead."""
    expiry, _, _ = username.partition(":")
    if not expiry.isdigit() or int(expiry) <= (time.time() if now is None else now):
        return False
    return hmac.compare_digest(password_for(secret, username), password)


def public_ice_servers() -> list[dict[str, Any]]:
    """ICE_SERVERS without any entry that carries a login (those stay on the server)."""
    return [
        {"urls": server["urls"]}
        for server in settings.ICE_SERVERS
        if isinstance(server, dict)
        and "urls" in server
        and not server.get("username")
        and not server.get("credential")
    ]


def ice_servers_for_kiosk(kiosk: str, now: float | None = None) -> list[dict[str, Any]]:
    """What an enrolled kiosk's page gets in ``hello.ice_servers`` for one call."""
    servers = public_ice_servers()
    if settings.TURN_SECRET and settings.TURN_URLS:
        username, password = credentials(
            settings.TURN_SECRET, kiosk, settings.TURN_CREDENTIAL_TTL_S, now
        )
        servers.append(
            {"urls": list(settings.TURN_URLS), "username": username, "credential": password}
        )
    return servers

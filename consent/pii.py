"""Personal identifiers in the audit trail: stored as keyed hashes, shown only to those who
may read consents.

A document reference or a person's name is written into an audit event as
``hmac-sha256:<hex>`` (HMAC with ``AUDIT_PII_KEY``, a key from the environment), enough to
match an event with a record without the identifier itself. Staff without the
``view_consents`` permission see events through :func:`masked`, which also hides the
identifiers that events written before this rule still carry in clear.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
from typing import Any

from django.conf import settings

HASH_PREFIX = "hmac-sha256:"
MASK = "[masked]"
# Details keys that hold a personal identifier in clear (older events, admin object names).
PII_DETAIL_KEYS = frozenset({"document_reference", "person_name", "person", "reference"})
# Targets whose admin "object" detail is a person's name or a consent naming one.
PERSONAL_TARGETS = ("consent.identityconsent:", "consent.identity:")


def pii_hash(value: str) -> str:
    """The keyed hash that stands for ``value`` in the audit trail."""
    digest = hmac.new(
        settings.AUDIT_PII_KEY.encode("utf-8"), value.strip().encode("utf-8"), hashlib.sha256
    ).hexdigest()
    return HASH_PREFIX + digest


def _mask_target(target: str) -> str:
    kind, sep, rest = target.partition(":")
    if kind == "person" and sep and not rest.startswith(HASH_PREFIX):
        return f"person:{MASK}"
    return target


def _mask_details(details: Any, target: str) -> Any:
    if not isinstance(details, dict):
        return details
    masked = {}
    for key, value in details.items():
        if key in PII_DETAIL_KEYS and isinstance(value, str) and value:
            value = MASK
        elif key == "object" and target.startswith(PERSONAL_TARGETS):
            value = MASK
        masked[key] = value
    return masked


def masked(event: Any) -> Any:
    """A copy of an audit event (model instance) without personal identifiers in clear."""
    target = event.target or ""
    copied = copy.copy(event)
    copied.details = _mask_details(event.details, target)
    copied.target = _mask_target(target)
    return copied


def may_read_personal_data(user: Any) -> bool:
    return bool(user and user.has_perm("dashboard.view_consents"))

"""Small display helpers for the dashboard's templates."""

import json
from typing import Any

from django import template

register = template.Library()


@register.filter
def audit_details(details: Any) -> str:
    """An event's details as ``key: value`` pairs (the reason has its own column)."""
    if not isinstance(details, dict):
        return ""
    parts = []
    for key in sorted(details):
        if key == "reason":
            continue
        value = details[key]
        if not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False, sort_keys=True)
        parts.append(f"{key}: {value}")
    return " · ".join(parts)

"""``GET /metrics`` on daphne: Prometheus text, for a scraper with the token or for staff.

``METRICS_TOKEN`` (from the environment) is the bearer token Prometheus sends
(``authorization: {credentials: ...}`` in its scrape config). Without the token, a logged-in
staff user allowed to view the dashboard may read it, with the second factor given when their
account needs one (the same rule as every staff page, kiosk/dashboard/second_factor.py);
anyone else gets 403.
"""

import hmac
import os

from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from kiosk import metrics
from kiosk.dashboard.roles import VIEW_DASHBOARD
from kiosk.dashboard.second_factor import needs_second_factor


def token_ok(request: HttpRequest) -> bool:
    expected = os.environ.get("METRICS_TOKEN", "")
    given = request.headers.get("Authorization", "")
    if not expected or not given.startswith("Bearer "):
        return False
    return hmac.compare_digest(given[len("Bearer ") :].encode(), expected.encode())


def staff_ok(request: HttpRequest) -> bool:
    user = request.user
    if not (user.is_authenticated and user.has_perm(VIEW_DASHBOARD)):
        return False
    verified = getattr(user, "is_verified", lambda: False)()
    return verified or not needs_second_factor(user)


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not token_ok(request) and not staff_ok(request):
        return HttpResponse("metrics need the scrape token or a staff login\n", status=403)
    metrics.add_database_collector()
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)

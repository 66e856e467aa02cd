"""``POST /provenance/verify``: staff upload a picture or clip, get the JSON answer.

Staff only (any role; anonymous callers get 401, other users 403), at most
``PROVENANCE_VERIFY_PER_MINUTE`` verifications per person per minute (429), uploads up to
``PROVENANCE_MAX_UPLOAD_BYTES`` kept in memory (never written to disk). The session id is
shown to roles that may read consents and sessions (``dashboard.view_consents``).
"""

from django.conf import settings
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from consent.audit import as_actor
from kiosk.dashboard.roles import VIEW_CONSENTS, VIEW_DASHBOARD
from kiosk.provenance.selectors import recent_verifications
from kiosk.provenance.services import verify_media
from media_engine.provenance.verify import UnreadableMedia


class _InMemory(MemoryFileUploadHandler):
    """Keeps every upload in memory (the size is checked before the body is read)."""

    def handle_raw_input(self, *args, **kwargs) -> None:
        super().handle_raw_input(*args, **kwargs)
        self.activated = True


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": code, "message": message}, status=status)


@csrf_exempt
@require_POST
def verify(request: HttpRequest) -> JsonResponse:
    """Checks who calls and how much they send, then reads the upload (CSRF-checked)."""
    user = request.user
    if not user.is_authenticated:
        return _error(401, "login_required", "log in as staff to verify pictures")
    if not user.has_perm(VIEW_DASHBOARD):
        return _error(403, "forbidden", "only staff may verify pictures")
    limit = settings.PROVENANCE_MAX_UPLOAD_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        return _error(413, "too_large", f"uploads are limited to {limit} bytes")
    if recent_verifications(as_actor(user).name) >= settings.PROVENANCE_VERIFY_PER_MINUTE:
        return _error(429, "rate_limited", "too many verifications: wait a minute")
    request.upload_handlers = [_InMemory(request)]
    return _verify_upload(request)


@csrf_protect
def _verify_upload(request: HttpRequest) -> JsonResponse:
    upload = request.FILES.get("image")
    if upload is None:
        return _error(400, "no_image", "send the picture or clip as the multipart field 'image'")
    if upload.size > settings.PROVENANCE_MAX_UPLOAD_BYTES:
        return _error(413, "too_large", "the upload is too large")
    try:
        answer = verify_media(
            upload.read(),
            actor=request.user,
            name=upload.name or "",
            show_session=request.user.has_perm(VIEW_CONSENTS),
        )
    except UnreadableMedia as exc:
        return _error(400, "not_an_image", f"not a picture or video clip: {exc}")
    return JsonResponse(answer)

"""Kiosk pages: the list of kiosks and the kiosk screen itself (thin; reads in selectors)."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from consent.selectors import current_texts
from kiosk import selectors
from kiosk.models import Kiosk
from kiosk.signaling import MAX_SDP_BYTES


def kiosk_list(request: HttpRequest) -> HttpResponse:
    return render(request, "kiosk/list.html", {"kiosks": Kiosk.objects.all()})


def kiosk_screen(request: HttpRequest, slug: str) -> HttpResponse:
    kiosk = selectors.get_kiosk(slug)
    if kiosk is None:
        raise Http404(f"no kiosk named {slug!r}")
    texts = {text.language: text for text in current_texts()}
    return render(
        request,
        "kiosk/screen.html",
        {
            "kiosk": kiosk,
            "text_zh": texts.get("zh-hans"),
            "text_en": texts.get("en"),
            "max_sdp_bytes": MAX_SDP_BYTES,
        },
    )

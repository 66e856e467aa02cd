"""WebSocket routes (signaling, docs/signaling.md; the dashboard's live page)."""

from django.urls import path

from kiosk.consumers import KioskSignalingConsumer
from kiosk.dashboard.consumers import LiveSessionsConsumer
from kiosk.portal.routing import websocket_urlpatterns as portal_websockets

# <str:slug>, not <slug:slug>: a malformed name still reaches the consumer, which answers
# with a clear "unknown_kiosk" error instead of a bare refused handshake.
websocket_urlpatterns: list = [
    path("ws/kiosk/<str:slug>/", KioskSignalingConsumer.as_asgi()),
    path("ws/dashboard/live/", LiveSessionsConsumer.as_asgi()),
    *portal_websockets,
]

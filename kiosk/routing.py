"""WebSocket routes (signaling, the dashboard's live page)."""

from django.urls import path

from dashboard.consumers import LiveSessionsConsumer

websocket_urlpatterns: list = [
    path("ws/dashboard/live/", LiveSessionsConsumer.as_asgi()),
]

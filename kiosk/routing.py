"""WebSocket routes (signaling)."""

websocket_urlpatterns: list = []

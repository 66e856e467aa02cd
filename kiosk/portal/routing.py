"""The portal's WebSocket routes (included by kiosk/routing.py)."""

from django.urls import path

from kiosk.portal.consumers import AgentConsumer, CustomerConsumer, SupervisorConsumer

websocket_urlpatterns: list = [
    path("ws/kiosk/<str:slug>/portal/", CustomerConsumer.as_asgi()),
    path("ws/portal/link/<str:token>/", CustomerConsumer.as_asgi()),
    path("ws/portal/agent/", AgentConsumer.as_asgi()),
    path("ws/portal/supervise/<uuid:call_id>/", SupervisorConsumer.as_asgi()),
]

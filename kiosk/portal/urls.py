from django.urls import path

from kiosk.portal import views

app_name = "portal"
urlpatterns = [
    path("kiosk/<slug:slug>/", views.kiosk_customer, name="kiosk-customer"),
    path("link/<str:token>/", views.home_customer, name="home-customer"),
    path("agent/", views.agent_desk, name="agent"),
    path("supervise/<uuid:call_id>/", views.supervise, name="supervise"),
]

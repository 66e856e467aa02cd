from django.contrib import admin
from django.urls import include, path

from kiosk import views
from kiosk.metrics_view import metrics_view

urlpatterns = [
    path("", views.kiosk_list, name="kiosk-list"),
    path("kiosk/<slug:slug>/", views.kiosk_screen, name="kiosk-screen"),
    path("kiosk/<slug:slug>/enrol/<str:code>/", views.kiosk_enrol, name="kiosk-enrol"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("dashboard/", include("kiosk.dashboard.urls")),
    path("consent/", include("consent.urls")),
    path("provenance/", include("kiosk.provenance.urls")),
    path("metrics", metrics_view, name="metrics"),
    path("portal/", include("kiosk.portal.urls")),
]

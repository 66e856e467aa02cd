from django.urls import path

from kiosk.provenance import views

app_name = "provenance"
urlpatterns = [path("verify", views.verify, name="verify")]

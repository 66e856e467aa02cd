from django.urls import path

from consent import views

app_name = "consent"

urlpatterns = [
    path("proof/session/<uuid:session_id>/", views.session_proof, name="session-proof"),
    path(
        "proof/session/<uuid:session_id>.json",
        views.session_proof,
        {"as_json": True},
        name="session-proof-json",
    ),
    path("proof/person/", views.person_proof, name="person-proof"),
    path("proof/person.json", views.person_proof, {"as_json": True}, name="person-proof-json"),
    path("record-of-processing/", views.record_of_processing, name="record-of-processing"),
    path(
        "record-of-processing.json",
        views.record_of_processing,
        {"as_json": True},
        name="record-of-processing-json",
    ),
]

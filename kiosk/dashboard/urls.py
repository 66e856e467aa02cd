from django.urls import path

from kiosk.dashboard.views import actions, audit, consents, devices, live, otp

app_name = "dashboard"

urlpatterns = [
    path("", live.live_page, name="live"),
    path("second-factor/", otp.second_factor, name="otp"),
    path("live.json", live.live_json, name="live-json"),
    path("kiosks/", live.kiosks_page, name="kiosks"),
    path("kiosks/<slug:slug>/devices/", devices.kiosk_devices, name="kiosk-devices"),
    path(
        "kiosks/<slug:slug>/devices/<int:device_id>/revoke/",
        devices.revoke_device,
        name="kiosk-device-revoke",
    ),
    path("switch/", actions.switch_global, name="switch-global"),
    path("kiosks/<slug:slug>/switch/", actions.switch_kiosk, name="switch-kiosk"),
    path("sessions/<uuid:session_id>/end/", actions.end_session, name="end-session"),
    path("audit/", audit.audit_page, name="audit"),
    path("audit/export.csv", audit.audit_export_csv, name="audit-csv"),
    path("audit/export.json", audit.audit_export_json, name="audit-json"),
    path("consents/", consents.consents_page, name="consents"),
    path("consents/<uuid:grant_id>/", consents.consent_detail, name="consent"),
    path("consents/<uuid:grant_id>/revoke/", consents.consent_revoke, name="consent-revoke"),
    path("identities/", consents.identities_page, name="identities"),
    path("identities/<int:pk>/", consents.identity_detail, name="identity"),
    path(
        "identities/<int:pk>/consents/",
        consents.identity_consent_record,
        name="identity-consent-record",
    ),
    path(
        "identities/<int:pk>/consents/<int:consent_id>/revoke/",
        consents.identity_consent_revoke,
        name="identity-consent-revoke",
    ),
]

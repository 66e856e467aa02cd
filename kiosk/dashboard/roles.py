"""The three staff roles and what each may do.

Roles are Django groups; what they may do are permissions. The dashboard's own
permissions hang on ``dashboard.Dashboard`` (a model without a table); the administrator
also gets Django's model permissions on kiosks, identities and users, which is what the
Django admin checks. A data migration creates the groups (``0001_roles``).
"""

AUDITOR = "auditor"
OPERATOR = "operator"
ADMINISTRATOR = "administrator"
ROLES = (AUDITOR, OPERATOR, ADMINISTRATOR)

# Dashboard permissions (app label "dashboard").
VIEW_DASHBOARD = "dashboard.view_dashboard"
VIEW_AUDIT = "dashboard.view_audit"
VIEW_CONSENTS = "dashboard.view_consents"
OPERATE_SWITCH = "dashboard.operate_switch"
END_SESSION = "dashboard.end_session"
REVOKE_CONSENT = "dashboard.revoke_consent"
# Administrators manage identities (Django's model permission, also used by the admin).
MANAGE_IDENTITIES = "consent.change_identity"

DASHBOARD_PERMISSIONS = {
    "view_dashboard": "Can open the dashboard and see live sessions and the switch",
    "view_audit": "Can search and export the audit trail",
    "view_consents": "Can read consents and identities and export their proofs",
    "operate_switch": "Can switch face fusion off and on",
    "end_session": "Can end a live kiosk session",
    "revoke_consent": "Can revoke consents and identity consents",
}

_READ = ["view_dashboard", "view_audit", "view_consents"]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    AUDITOR: _READ,
    OPERATOR: ["view_dashboard", "view_audit", "operate_switch", "end_session"],
    ADMINISTRATOR: [*_READ, "operate_switch", "end_session", "revoke_consent"],
}

# Django model permissions the administrator gets: (app label, model) -> actions.
ADMINISTRATOR_MODEL_PERMISSIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("kiosk", "kiosk"): ("add", "change", "delete", "view"),
    ("kiosk", "fusionswitch"): ("view",),
    ("consent", "identity"): ("add", "change", "delete", "view"),
    ("consent", "consenttext"): ("add", "view"),
    ("consent", "kiosksession"): ("view",),
    ("auth", "user"): ("add", "change", "delete", "view"),
    ("auth", "group"): ("view",),
}

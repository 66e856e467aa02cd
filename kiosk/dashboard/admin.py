from kiosk.dashboard.admin_audit import audit_auth_admin

audit_auth_admin()

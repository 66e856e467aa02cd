"""The staff roles: auditor, operator, administrator as groups with their permissions.

A snapshot of dashboard/roles.py at the time of writing (migrations must not follow later
edits of application code).
"""

from django.db import migrations, models

DASHBOARD_PERMISSIONS = {
    "view_dashboard": "Can open the dashboard and see live sessions and the switch",
    "view_audit": "Can search and export the audit trail",
    "view_consents": "Can read consents and identities and export their proofs",
    "operate_switch": "Can switch face fusion off and on",
    "end_session": "Can end a live kiosk session",
    "revoke_consent": "Can revoke consents and identity consents",
}
READ = ["view_dashboard", "view_audit", "view_consents"]
ROLE_PERMISSIONS = {
    "auditor": READ,
    "operator": ["view_dashboard", "view_audit", "operate_switch", "end_session"],
    "administrator": [*READ, "operate_switch", "end_session", "revoke_consent"],
}
ADMINISTRATOR_MODEL_PERMISSIONS = {
    ("kiosk", "kiosk"): ("add", "change", "delete", "view"),
    ("kiosk", "fusionswitch"): ("view",),
    ("consent", "identity"): ("add", "change", "delete", "view"),
    ("consent", "consenttext"): ("add", "view"),
    ("consent", "kiosksession"): ("view",),
    ("auth", "user"): ("add", "change", "delete", "view"),
    ("auth", "group"): ("view",),
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate); create them
    # now so that the groups can hold them on a fresh database.
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(
            *Permission.objects.filter(
                content_type__app_label="dashboard", codename__in=codenames
            )
        )
    administrator = Group.objects.get(name="administrator")
    for (app_label, model), actions in ADMINISTRATOR_MODEL_PERMISSIONS.items():
        administrator.permissions.add(
            *Permission.objects.filter(
                content_type__app_label=app_label,
                content_type__model=model,
                codename__in=[f"{action}_{model}" for action in actions],
            )
        )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLE_PERMISSIONS)).delete()


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("kiosk", "0003_kiosk_identity"),
        ("consent", "0003_identity"),
    ]

    operations = [
        migrations.CreateModel(
            name="Dashboard",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
            ],
            options={
                "managed": False,
                "default_permissions": (),
                "permissions": list(DASHBOARD_PERMISSIONS.items()),
            },
        ),
        migrations.RunPython(create_roles, remove_roles),
    ]

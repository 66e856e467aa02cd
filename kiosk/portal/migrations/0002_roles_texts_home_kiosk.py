"""The agent and supervisor roles, the portal's consent texts (v1), and the kiosk row that
stands for customers' own browsers (one-time links). A snapshot of kiosk/portal/texts.py."""

from django.db import migrations

from kiosk.portal.texts import HOME_KIOSK, ROLE_PERMISSIONS, TEXTS


def forwards(apps, schema_editor):
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
            *Permission.objects.filter(content_type__app_label="portal", codename__in=codenames)
        )
    ConsentText = apps.get_model("consent", "ConsentText")
    for purpose, language, title, body in TEXTS:
        if not ConsentText.objects.filter(purpose=purpose, language=language).exists():
            import hashlib

            ConsentText.objects.create(
                purpose=purpose,
                language=language,
                version=1,
                title=title,
                body=body,
                sha256=hashlib.sha256(body.encode("utf-8")).hexdigest(),
            )
    Kiosk = apps.get_model("kiosk", "Kiosk")
    Kiosk.objects.get_or_create(
        slug=HOME_KIOSK,
        defaults={"name": "Customer's own browser (portal link)", "engine": "avatar"},
    )


def backwards(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLE_PERMISSIONS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0001_initial"),
        ("consent", "0007_consent_grants_identity_consents"),
        ("kiosk", "0003_kiosk_identity"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]

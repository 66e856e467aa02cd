"""The shipped default avatar as an identity row, and the demo kiosk showing it.

The avatar is synthetic (drawn by models/scripts/make_default_avatar.py; no real person
behind it), so it needs no depicted person's consent. Its image is a shipped asset
(models/manifest.json "avatar_default"), not bytes in the row.
"""

from django.db import migrations

NAME = "Default avatar"
ASSET = "avatar_default"


def create_default_avatar(apps, schema_editor):
    Identity = apps.get_model("consent", "Identity")
    Kiosk = apps.get_model("kiosk", "Kiosk")
    avatar, _ = Identity.objects.get_or_create(
        asset=ASSET, defaults={"name": NAME, "kind": "avatar", "synthetic": True}
    )
    Kiosk.objects.filter(slug="demo", identity__isnull=True).update(identity=avatar)


def remove_default_avatar(apps, schema_editor):
    Identity = apps.get_model("consent", "Identity")
    Kiosk = apps.get_model("kiosk", "Kiosk")
    avatars = Identity.objects.filter(asset=ASSET, synthetic=True)
    Kiosk.objects.filter(identity__in=avatars).update(identity=None)
    avatars.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0005_audit_append_only"),
        ("kiosk", "0003_kiosk_identity"),
    ]
    operations = [migrations.RunPython(create_default_avatar, remove_default_avatar)]

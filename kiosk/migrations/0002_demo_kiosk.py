"""One demo kiosk on first run, so a fresh installation can be used at once."""

from django.db import migrations


def create_demo(apps, schema_editor):
    Kiosk = apps.get_model("kiosk", "Kiosk")
    Kiosk.objects.get_or_create(
        slug="demo", defaults={"name": "Demo kiosk", "location": "Counter 1", "engine": "avatar"}
    )


class Migration(migrations.Migration):
    dependencies = [("kiosk", "0001_initial")]
    operations = [migrations.RunPython(create_demo, migrations.RunPython.noop)]

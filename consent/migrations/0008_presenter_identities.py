"""The shipped synthetic presenters as identity rows; the demo kiosk shows the first.

The presenters are drawn by models/scripts/make_presenters.py (no real person behind them), so
they need no depicted person's consent. Each row names its rig by the asset
``presenter_<slug>`` (files ``presenter_<slug>_<part>`` in models/manifest.json). The old
default avatar's row stays, for kiosks that chose it; the demo kiosk moves from it (or from
none) to the first presenter.
"""

from django.db import migrations

# (slug, name), the first is the default; see media_engine/engines/presenter_catalog.py.
PRESENTERS = (("mei", "Mei (presenter)"), ("daniel", "Daniel (presenter)"))
OLD_DEFAULT = "avatar_default"


def create_presenters(apps, schema_editor):
    Identity = apps.get_model("consent", "Identity")
    Kiosk = apps.get_model("kiosk", "Kiosk")
    rows = []
    for slug, name in PRESENTERS:
        row, _ = Identity.objects.get_or_create(
            asset=f"presenter_{slug}", defaults={"name": name, "kind": "avatar", "synthetic": True}
        )
        rows.append(row)
    old = Identity.objects.filter(asset=OLD_DEFAULT, synthetic=True).first()
    demo = Kiosk.objects.filter(slug="demo").first()
    if demo is not None and (demo.identity_id is None or (old and demo.identity_id == old.pk)):
        demo.identity = rows[0]
        demo.save(update_fields=["identity"])


def remove_presenters(apps, schema_editor):
    Identity = apps.get_model("consent", "Identity")
    Kiosk = apps.get_model("kiosk", "Kiosk")
    rows = Identity.objects.filter(
        asset__in=[f"presenter_{slug}" for slug, _ in PRESENTERS], synthetic=True
    )
    old = Identity.objects.filter(asset=OLD_DEFAULT, synthetic=True).first()
    Kiosk.objects.filter(slug="demo", identity__in=rows).update(identity=old)
    Kiosk.objects.filter(identity__in=rows).update(identity=None)
    rows.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0007_consent_grants_identity_consents"),
        ("kiosk", "0003_kiosk_identity"),
    ]
    operations = [migrations.RunPython(create_presenters, remove_presenters)]

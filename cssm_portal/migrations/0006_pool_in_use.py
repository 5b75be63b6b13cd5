"""LicensePool.in_use (kept by the services with every usage write) and the
verdict last written to the usage rows' status; filled from the usage rows."""

from django.db import migrations, models
from django.db.models import Exists, IntegerField, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce


def recount(apps, schema_editor):
    LicensePool = apps.get_model("cssm_portal", "LicensePool")
    LicenseUsage = apps.get_model("cssm_portal", "LicenseUsage")
    needed = set(LicenseUsage.objects.values_list("instance__virtual_account_id", "tag").distinct())
    have = set(LicensePool.objects.values_list("virtual_account_id", "tag"))
    LicensePool.objects.bulk_create(
        [LicensePool(virtual_account_id=va_id, tag=tag, purchased=0) for va_id, tag in sorted(needed - have)]
    )
    rows = LicenseUsage.objects.filter(
        instance__virtual_account_id=OuterRef("virtual_account_id"), tag=OuterRef("tag")
    ).order_by()
    total = rows.values("tag").annotate(total=Sum("count")).values("total")
    LicensePool.objects.update(
        in_use=Coalesce(Subquery(total, output_field=IntegerField()), 0),
        in_compliance=~Exists(rows.filter(status="out_of_compliance")),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("cssm_portal", "0005_agreements_satellites"),
    ]

    operations = [
        migrations.AddField(
            model_name="licensepool",
            name="in_use",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="licensepool",
            name="in_compliance",
            field=models.BooleanField(default=True),
        ),
        migrations.AddConstraint(
            model_name="licensepool",
            constraint=models.CheckConstraint(condition=models.Q(in_use__gte=0), name="pool_in_use_not_negative"),
        ),
        migrations.RunPython(recount, migrations.RunPython.noop),
    ]

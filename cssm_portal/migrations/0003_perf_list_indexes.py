"""Indexes for the list pages and the time-driven alert rules at fleet scale
(docs/performance.md): the Product Instances table sorted by name (in one virtual account, and
across several for the report), the
instances by last contact (cssm_next_due, Failed to Connect / Renew), and the
out-of-compliance usage rows (the Insufficient Licenses flag of each row).

Plain SQL (valid on PostgreSQL and SQLite) rather than Meta.indexes, so that
the models keep their owners' declarations; the model state is unchanged and
`makemigrations --check` stays clean. Move them into Meta.indexes whenever
models.py is next edited.
"""

from django.db import migrations

INDEXES = [
    # Partial: the Insufficient Licenses flag of each listed instance probes only the out-of-compliance rows
    # (without it PostgreSQL hashed a scan of every usage row of the database: 80 ms per page).
    ("usage_ooc_perf_idx", "cssm_portal_licenseusage", "instance_id", "status = 'out_of_compliance'"),
    ("pi_va_name_perf_idx", "cssm_portal_productinstance", "virtual_account_id, name, id", ""),
    ("pi_name_perf_idx", "cssm_portal_productinstance", "name, id", ""),
    ("pi_lab_last_contact_perf_idx", "cssm_portal_productinstance", "lab_id, last_contact", ""),
]


class Migration(migrations.Migration):
    dependencies = [
        ("cssm_portal", "0002_productinstance_licenseusage_registrationtoken_and_more"),
    ]

    operations = [
        migrations.RunSQL(
            sql=f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})" + (f" WHERE {where}" if where else ""),
            reverse_sql=f"DROP INDEX IF EXISTS {name}",
        )
        for name, table, columns, where in INDEXES
    ]

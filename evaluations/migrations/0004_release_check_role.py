from django.db import migrations

from tickets.roles import TRIAGE_ADMINS, grant_permissions


def grant(apps, schema_editor):
    grant_permissions(apps, "evaluations", {TRIAGE_ADMINS: ["run_release_check"]})


class Migration(migrations.Migration):
    dependencies = [
        ("evaluations", "0003_release_evidence"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

from django.db import migrations

from tickets.roles import SUPPORT_REVIEWERS, TRIAGE_ADMINS, grant_permissions


def grant(apps, schema_editor):
    # Whoever works the manual-triage queue may send a ticket back to the agent.
    grant_permissions(
        apps, "agent", {SUPPORT_REVIEWERS: ["rerun_triage"], TRIAGE_ADMINS: ["rerun_triage"]}
    )


class Migration(migrations.Migration):
    dependencies = [
        ("agent", "0006_rerun_triage"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

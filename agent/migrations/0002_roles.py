from django.db import migrations

from tickets.roles import SUPPORT_REVIEWERS, TRIAGE_ADMINS, grant_permissions

READ = [
    "view_agentrun",
    "view_tracestep",
    "view_triageproposal",
]


def grant(apps, schema_editor):
    grant_permissions(
        apps,
        "agent",
        {
            SUPPORT_REVIEWERS: [*READ, "review_triageproposal"],
            TRIAGE_ADMINS: [
                *READ,
                "review_triageproposal",
                "view_agentsettings",
                "change_agentsettings",
            ],
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("agent", "0001_initial"),
        ("tickets", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

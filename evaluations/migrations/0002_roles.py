from django.db import migrations

from tickets.roles import SUPPORT_REVIEWERS, TRIAGE_ADMINS, grant_permissions

MODELS = ["evaluationexample", "evaluationrun", "evaluationresult"]


def grant(apps, schema_editor):
    grant_permissions(
        apps,
        "evaluations",
        {
            SUPPORT_REVIEWERS: [f"view_{model}" for model in MODELS],
            TRIAGE_ADMINS: [
                *[f"view_{model}" for model in MODELS],
                "add_evaluationexample",
                "change_evaluationexample",
                "delete_evaluationexample",
            ],
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("evaluations", "0001_initial"),
        ("agent", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

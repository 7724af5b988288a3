from django.db import migrations

from tickets.roles import SUPPORT_REVIEWERS, TRIAGE_ADMINS, grant_permissions

# Minutes from a ticket's arrival to its review: an hour for urgent, four for high, a day for
# normal, three for low. A starting point that Triage admins change to their own promise.
DEFAULT_MINUTES = {"urgent": 60, "high": 240, "normal": 1440, "low": 4320}


def create_targets(apps, schema_editor):
    review_target = apps.get_model("agent", "ReviewTarget")
    for urgency, minutes in DEFAULT_MINUTES.items():
        review_target.objects.get_or_create(urgency=urgency, defaults={"minutes": minutes})


def grant(apps, schema_editor):
    grant_permissions(
        apps,
        "agent",
        {
            SUPPORT_REVIEWERS: ["view_reviewtarget"],
            TRIAGE_ADMINS: ["view_reviewtarget", "change_reviewtarget"],
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("agent", "0008_claims_targets_question_sent"),
    ]

    operations = [
        migrations.RunPython(create_targets, migrations.RunPython.noop),
        migrations.RunPython(grant, migrations.RunPython.noop),
    ]

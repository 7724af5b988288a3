from django.db import migrations

from tickets.roles import SUPPORT_REVIEWERS, TICKET_INTAKE, TRIAGE_ADMINS, grant_permissions

READ = [
    "view_ticket",
    "view_category",
    "view_replytemplate",
    "view_ticketnote",
    "view_changerecord",
]


def grant(apps, schema_editor):
    grant_permissions(
        apps,
        "tickets",
        {
            SUPPORT_REVIEWERS: READ,
            TRIAGE_ADMINS: [
                *READ,
                "add_ticket",
                "change_ticket",
                "add_ticketnote",
                "add_category",
                "change_category",
                "delete_category",
                "add_replytemplate",
                "change_replytemplate",
                "delete_replytemplate",
            ],
            TICKET_INTAKE: ["add_ticket", "view_ticket"],
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

"""The staff roles (auth groups) and the helper each app's data migration uses to grant its
permissions to them. Groups are data, so they are created by migrations, not by hand."""

from typing import Any

SUPPORT_REVIEWERS = "Support reviewers"
TRIAGE_ADMINS = "Triage admins"
TICKET_INTAKE = "Ticket intake"  # integration users that only post tickets over the API


def grant_permissions(apps: Any, app_label: str, grants: dict[str, list[str]]) -> None:
    """Creates the groups in ``grants`` if needed and gives each the listed permission codenames
    of ``app_label``. For use in a ``RunPython`` data migration; raises if a codename is
    unknown, so a renamed permission cannot silently leave a role without it."""
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after migrate; a data migration must create them first.
    app_config = apps.get_app_config(app_label)
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for group_name, codenames in grants.items():
        group, _ = group_model.objects.get_or_create(name=group_name)
        permissions = list(
            permission_model.objects.filter(
                content_type__app_label=app_label, codename__in=codenames
            )
        )
        missing = set(codenames) - {permission.codename for permission in permissions}
        if missing:
            raise LookupError(f"unknown permissions for {app_label}: {sorted(missing)}")
        group.permissions.add(*permissions)

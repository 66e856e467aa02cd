"""Staff accounts: a user in one of the roles (auditor, operator, administrator)."""

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import AbstractUser, Group
from django.core.exceptions import ValidationError
from django.db import transaction

from kiosk.dashboard.roles import ADMINISTRATOR, ROLES


def create_staff_user(username: str, password: str, role: str) -> AbstractUser:
    """A user in ``role``. Administrators also get Django's admin (``is_staff``). The password
    must pass AUTH_PASSWORD_VALIDATORS (ValidationError says why)."""
    if role not in ROLES:
        raise ValidationError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    # The same password validators as everywhere else a password is set (settings).
    password_validation.validate_password(password, get_user_model()(username=username))
    with transaction.atomic():
        user = get_user_model().objects.create_user(
            username=username, password=password, is_staff=role == ADMINISTRATOR
        )
        user.groups.add(Group.objects.get(name=role))
    return user


def ensure_roles() -> None:
    """Create the role groups with their permissions if missing (the data migration does
    this on a fresh database; tests that flush the database call it again)."""
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Permission

    from kiosk.dashboard.roles import ADMINISTRATOR_MODEL_PERMISSIONS, ROLE_PERMISSIONS

    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="dashboard", codename__in=codenames)
        )
    administrator = Group.objects.get(name=ADMINISTRATOR)
    for (app_label, model), actions in ADMINISTRATOR_MODEL_PERMISSIONS.items():
        administrator.permissions.add(
            *Permission.objects.filter(
                content_type__app_label=app_label,
                content_type__model=model,
                codename__in=[f"{action}_{model}" for action in actions],
            )
        )

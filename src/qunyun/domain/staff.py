"""Staff roles and what each may do. Checked only through ``services.access``."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    SALES = "sales"
    VIEWER = "viewer"


class Permission(StrEnum):
    VIEW = "view"  # dashboards, groups, messages, reports
    OPERATE = "operate"  # change groups, rules, outbox, tasks
    MEMBER_PII = "member_pii"  # see phone numbers and addresses unmasked
    MANAGE_USERS = "manage_users"
    WORK_TASKS = "work_tasks"  # mark staff tasks done


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: frozenset(
        {Permission.VIEW, Permission.OPERATE, Permission.MEMBER_PII, Permission.WORK_TASKS}
    ),
    Role.SALES: frozenset({Permission.VIEW, Permission.MEMBER_PII, Permission.WORK_TASKS}),
    Role.VIEWER: frozenset({Permission.VIEW}),
}


def role_allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]

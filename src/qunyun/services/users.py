"""Staff accounts: argon2 password hashes, roles, API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, select, update

from qunyun.adapters.storage.tables import api_tokens, staff_users, utcnow
from qunyun.domain.staff import Permission, Role, role_allows
from qunyun.services import audit
from qunyun.services.errors import AccessDenied, Conflict, InvalidInput, NotFound

_hasher = PasswordHasher()
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{2,64}$")
MIN_PASSWORD = 8


@dataclass(frozen=True, slots=True)
class Actor:
    """The staff user a request or command acts for."""

    id: int
    username: str
    role: Role
    language: str = "zh-CN"
    session_version: int = 1

    def can(self, permission: Permission) -> bool:
        return role_allows(self.role, permission)

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise AccessDenied(f"role {self.role.value} may not {permission.value}")

    @property
    def label(self) -> str:
        return f"user:{self.username}"


SYSTEM = Actor(id=0, username="system", role=Role.ADMIN)


def _actor(row: Any) -> Actor:
    return Actor(id=row.id, username=row.username, role=Role(row.role), language=row.language,
                 session_version=row.session_version)


def do_create_user(
    conn: Connection, *, actor: Actor, username: str, password: str, role: str,
    display_name: str = "", language: str = "zh-CN",
) -> Actor:
    actor.require(Permission.MANAGE_USERS)
    if not USERNAME_RE.match(username):
        raise InvalidInput("username: 2–64 letters, digits, '_', '.', '-'")
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password: at least {MIN_PASSWORD} characters")
    try:
        role_value = Role(role)
    except ValueError:
        raise InvalidInput(f"role: one of {', '.join(r.value for r in Role)}") from None
    if language not in ("zh-CN", "en"):
        raise InvalidInput("language: zh-CN or en")
    exists = conn.execute(select(staff_users.c.id).where(staff_users.c.username == username))
    if exists.first() is not None:
        raise Conflict(f"username {username!r} is taken")
    user_id = conn.execute(staff_users.insert().values(
        username=username, display_name=display_name or username,
        password_hash=_hasher.hash(password), role=role_value.value, language=language,
        active=True, session_version=1, created_at=utcnow(),
    ).returning(staff_users.c.id)).scalar_one()
    audit.record(conn, actor=actor.label, action="user.create", object_type="staff_user",
                 object_id=user_id, detail={"username": username, "role": role_value.value})
    return Actor(id=user_id, username=username, role=role_value, language=language)


def authenticate(conn: Connection, *, username: str, password: str) -> Actor | None:
    """Check a password; rehash when argon2 parameters changed. Audits success and failure."""
    row = conn.execute(select(staff_users).where(staff_users.c.username == username)).first()
    ok = False
    if row is not None and row.active:
        try:
            ok = _hasher.verify(row.password_hash, password)
        except (VerificationError, InvalidHashError):
            ok = False
    else:
        _hasher.hash(password)  # same work whether or not the user exists
    if not ok or row is None:
        audit.record(conn, actor=f"user:{username}", action="user.login_failed")
        return None
    values: dict[str, Any] = {"last_login_at": utcnow()}
    if _hasher.check_needs_rehash(row.password_hash):
        values["password_hash"] = _hasher.hash(password)
    conn.execute(update(staff_users).where(staff_users.c.id == row.id).values(**values))
    audit.record(conn, actor=f"user:{username}", action="user.login", object_type="staff_user",
                 object_id=row.id)
    return _actor(row)


def get_actor(conn: Connection, user_id: int) -> Actor | None:
    row = conn.execute(select(staff_users).where(staff_users.c.id == user_id)).first()
    if row is None or not row.active:
        return None
    return _actor(row)


def actor_by_username(conn: Connection, username: str) -> Actor:
    """Act as a named staff user (the CLI's ``--as``): their role decides what they see."""
    row = conn.execute(select(staff_users).where(staff_users.c.username == username,
                                                 staff_users.c.active.is_(True))).first()
    if row is None:
        raise NotFound(f"no active staff user {username!r}")
    return _actor(row)


def list_users(conn: Connection, *, actor: Actor) -> list[dict[str, Any]]:
    actor.require(Permission.MANAGE_USERS)
    rows = conn.execute(select(
        staff_users.c.id, staff_users.c.username, staff_users.c.display_name,
        staff_users.c.role, staff_users.c.language, staff_users.c.active,
        staff_users.c.created_at, staff_users.c.last_login_at,
    ).order_by(staff_users.c.id)).mappings()
    return [dict(r) for r in rows]


def do_set_language(conn: Connection, *, actor: Actor, language: str) -> None:
    if language not in ("zh-CN", "en"):
        raise InvalidInput("language: zh-CN or en")
    conn.execute(update(staff_users).where(staff_users.c.id == actor.id)
                 .values(language=language))
    audit.record(conn, actor=actor.label, action="user.set_language", object_type="staff_user",
                 object_id=actor.id, detail={"language": language})


def do_create_api_token(conn: Connection, *, actor: Actor, username: str,
                        label: str = "") -> str:
    """Create a bearer token for ``username``; only its hash is stored."""
    if actor.username != username:
        actor.require(Permission.MANAGE_USERS)
    row = conn.execute(select(staff_users.c.id).where(staff_users.c.username == username)).first()
    if row is None:
        raise NotFound(f"no staff user {username!r}")
    token = "qy_" + secrets.token_urlsafe(32)
    conn.execute(api_tokens.insert().values(
        user_id=row.id, token_hash=_token_hash(token), label=label, created_at=utcnow()))
    audit.record(conn, actor=actor.label, action="token.create", object_type="staff_user",
                 object_id=row.id, detail={"label": label})
    return token


def actor_for_token(conn: Connection, token: str) -> Actor | None:
    row = conn.execute(
        select(staff_users, api_tokens.c.id.label("token_id"))
        .join(api_tokens, api_tokens.c.user_id == staff_users.c.id)
        .where(api_tokens.c.token_hash == _token_hash(token), api_tokens.c.revoked_at.is_(None))
    ).first()
    if row is None or not row.active:
        return None
    return _actor(row)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

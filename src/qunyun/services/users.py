"""Staff accounts: argon2 password hashes, roles, browser sessions, API tokens, the login
back-off.

A browser session is a random id in the signed cookie whose hash is stored: logging out ends
that session, and a password change, a role change or disabling the account ends every
session of the account, so a copied cookie stops working. Tokens expire (90 days unless
chosen) and can be revoked. Failed sign-ins are counted per account and per client address;
past a few, each further try waits longer (429 with ``Retry-After``) without the password
being checked, so guessing is slow and a flood of logins costs no hashing."""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, func, select, update

from qunyun.adapters.storage.tables import (
    api_tokens,
    login_failures,
    staff_sessions,
    staff_users,
)
from qunyun.clock import utcnow
from qunyun.domain.staff import Permission, Role, role_allows
from qunyun.services import audit
from qunyun.services.errors import (
    AccessDenied,
    Conflict,
    InvalidInput,
    NotFound,
    TooManyAttempts,
)

_hasher = PasswordHasher()
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{2,64}$")
MIN_PASSWORD = 8
SESSION_DAYS = 14
TOKEN_DAYS = 90
MAX_TOKEN_DAYS = 366
# The login back-off: this many failures in an hour are free, then each one blocks the next
# try for 30 s, doubling up to 15 minutes. A client address gets more (a team behind one NAT).
FREE_FAILURES = {"user": 5, "client": 20}
FAILURE_WINDOW = timedelta(hours=1)
FIRST_BLOCK_SECONDS = 30
MAX_BLOCK_SECONDS = 900
# The passwords tried first by anyone guessing (common lists, Chinese ones included).
COMMON_PASSWORDS = frozenset({
    "password", "password1", "password123", "passw0rd", "qwerty123", "qwertyuiop",
    "1qaz2wsx", "1q2w3e4r", "1q2w3e4r5t", "zaq12wsx", "abc12345", "abcd1234", "a1234567",
    "a12345678", "a123456789", "aa123456", "admin123", "admin888", "administrator",
    "iloveyou", "woaini1314", "woaini520", "5201314520", "1314520520", "sunshine",
    "princess", "football", "baseball", "welcome1", "letmein1", "trustno1", "dragon123",
    "monkey123", "qazwsxedc", "asdfghjkl", "zxcvbnm123", "qwer1234", "asdf1234",
    "p@ssw0rd", "test1234", "changeme", "qunyun123", "iloveyou1",
})


@dataclass(frozen=True, slots=True)
class Actor:
    """The staff user a request or command acts for."""

    id: int
    username: str
    role: Role
    language: str = "zh-CN"
    session_version: int = 1
    session_id: int | None = None  # the browser session the request came with, if any

    def can(self, permission: Permission) -> bool:
        return role_allows(self.role, permission)

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise AccessDenied("role {role} may not {permission}", role=self.role.value,
                               permission=permission.value)

    @property
    def label(self) -> str:
        return f"user:{self.username}"


SYSTEM = Actor(id=0, username="system", role=Role.ADMIN)


def username_of(label: str) -> str | None:
    """Who an audit label names, for a person: ``user:lin`` → ``lin``; None for the system
    itself (the label is ``Actor.label``'s, so it is read here, not on pages)."""
    name = label.removeprefix("user:")
    return None if name == SYSTEM.username else name


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
    check_password(password, username)
    role_value = _role(role)
    if language not in ("zh-CN", "en"):
        raise InvalidInput("language: zh-CN or en")
    exists = conn.execute(select(staff_users.c.id).where(staff_users.c.username == username))
    if exists.first() is not None:
        raise Conflict("username {username!r} is taken", username=username)
    user_id = conn.execute(staff_users.insert().values(
        username=username, display_name=display_name or username,
        password_hash=_hasher.hash(password), role=role_value.value, language=language,
        active=True, session_version=1, created_at=utcnow(),
    ).returning(staff_users.c.id)).scalar_one()
    audit.record(conn, actor=actor.label, action="user.create", object_type="staff_user",
                 object_id=user_id, detail={"username": username, "role": role_value.value})
    return Actor(id=user_id, username=username, role=role_value, language=language)


def check_password(password: str, username: str = "") -> None:
    """Refuse passwords that fall to the first guesses: short, common, one repeated
    character, a run like 12345678 or abcdefgh, or the account name itself."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput("password: at least {n} characters", n=MIN_PASSWORD)
    if len(password) > 256:
        raise InvalidInput("password: at most 256 characters")
    lowered = password.lower()
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(lowered)}
    if (lowered in COMMON_PASSWORDS or len(set(lowered)) <= 2 or steps <= {1} or steps <= {-1}
            or (username and username.lower() in lowered)):
        raise InvalidInput("password: too easy to guess (a common password, a run like "
                           "12345678, repeated characters or the account name); "
                           "choose a longer, less predictable one")


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput("role: one of {choices}",
                           choices=", ".join(r.value for r in Role)) from None


def _verify(row: Any, password: str) -> bool:
    if row is not None and row.active:
        try:
            return bool(_hasher.verify(row.password_hash, password))
        except (VerificationError, InvalidHashError):
            return False
    _hasher.hash(password)  # same work whether or not the user exists
    return False


def _throttle_keys(username: str, client: str) -> list[str]:
    keys = [f"user:{username[:150]}"]
    if client:
        keys.append(f"client:{client[:150]}")
    return keys


def login_wait(conn: Connection, *, username: str, client: str, now: datetime) -> int:
    """Seconds before this account or client may try again (0: now)."""
    rows = conn.execute(select(login_failures.c.blocked_until).where(
        login_failures.c.key.in_(_throttle_keys(username, client)))).all()
    waits = [(r.blocked_until - now).total_seconds() for r in rows if r.blocked_until]
    longest = max(waits, default=0.0)
    return int(longest) + 1 if longest > 0 else 0


def _note_failure(conn: Connection, *, username: str, client: str, now: datetime) -> None:
    for key in _throttle_keys(username, client):
        row = conn.execute(select(login_failures).where(login_failures.c.key == key)).first()
        if row is None or now - row.first_at > FAILURE_WINDOW:
            failures, first = 1, now
            conn.execute(delete(login_failures).where(login_failures.c.key == key))
            conn.execute(login_failures.insert().values(key=key, failures=1, first_at=now))
        else:
            failures, first = row.failures + 1, row.first_at
        free = FREE_FAILURES[key.split(":", 1)[0]]
        blocked = None
        if failures >= free:
            seconds = min(FIRST_BLOCK_SECONDS * 2 ** min(failures - free, 10),
                          MAX_BLOCK_SECONDS)
            blocked = now + timedelta(seconds=seconds)
        conn.execute(update(login_failures).where(login_failures.c.key == key).values(
            failures=failures, first_at=first, blocked_until=blocked))


def authenticate(conn: Connection, *, username: str, password: str, client: str = "",
                 now: datetime | None = None) -> Actor | None:
    """Check a password; rehash when argon2 parameters changed. Audits success and failure.

    Raises ``TooManyAttempts`` while the account or client is backing off (the password is
    not checked then, so the answer says nothing about it)."""
    now = now or utcnow()
    wait = login_wait(conn, username=username, client=client, now=now)
    if wait:
        raise TooManyAttempts("too many failed sign-ins: try again in {wait} s", wait, wait=wait)
    row = conn.execute(select(staff_users).where(staff_users.c.username == username)).first()
    if row is None or not _verify(row, password):
        _note_failure(conn, username=username, client=client, now=now)
        audit.record(conn, actor=f"user:{username[:64]}", action="user.login_failed",
                     detail={"client": client[:64]})
        return None
    conn.execute(delete(login_failures).where(login_failures.c.key == f"user:{username}"))
    values: dict[str, Any] = {"last_login_at": now}
    if _hasher.check_needs_rehash(row.password_hash):
        values["password_hash"] = _hasher.hash(password)
    conn.execute(update(staff_users).where(staff_users.c.id == row.id).values(**values))
    audit.record(conn, actor=f"user:{username}", action="user.login", object_type="staff_user",
                 object_id=row.id)
    return _actor(row)


# --- browser sessions ---------------------------------------------------------------------

def do_start_session(conn: Connection, *, actor: Actor, client: str = "",
                     now: datetime | None = None) -> str:
    """A new browser session for a signed-in user; returns the id the cookie carries."""
    now = now or utcnow()
    sid = secrets.token_urlsafe(32)
    conn.execute(staff_sessions.insert().values(
        user_id=actor.id, sid_hash=_token_hash(sid), created_at=now,
        expires_at=now + timedelta(days=SESSION_DAYS), client=client[:64]))
    return sid


def actor_for_session(conn: Connection, sid: str, now: datetime | None = None) -> Actor | None:
    """The staff user of a live session (not ended, not expired, account active)."""
    now = now or utcnow()
    row = conn.execute(
        select(staff_users, staff_sessions.c.id.label("session_id"))
        .join(staff_sessions, staff_sessions.c.user_id == staff_users.c.id)
        .where(staff_sessions.c.sid_hash == _token_hash(sid),
               staff_sessions.c.ended_at.is_(None), staff_sessions.c.expires_at > now)
    ).first()
    if row is None or not row.active:
        return None
    actor = _actor(row)
    return Actor(id=actor.id, username=actor.username, role=actor.role,
                 language=actor.language, session_version=actor.session_version,
                 session_id=int(row.session_id))


def _end_sessions(conn: Connection, *, user_id: int, reason: str, now: datetime,
                  keep: int | None = None) -> int:
    query = update(staff_sessions).where(staff_sessions.c.user_id == user_id,
                                         staff_sessions.c.ended_at.is_(None))
    if keep is not None:
        query = query.where(staff_sessions.c.id != keep)
    return int(conn.execute(query.values(ended_at=now, end_reason=reason)).rowcount or 0)


def do_end_session(conn: Connection, *, actor: Actor, session_id: int | None = None,
                   now: datetime | None = None) -> None:
    """Log out: end the actor's current session (or another of their own sessions)."""
    now = now or utcnow()
    target = session_id if session_id is not None else actor.session_id
    if target is None:
        return
    done = conn.execute(update(staff_sessions).where(
        staff_sessions.c.id == target, staff_sessions.c.user_id == actor.id,
        staff_sessions.c.ended_at.is_(None)).values(
        ended_at=now, end_reason="logout" if target == actor.session_id else "ended"))
    if not done.rowcount:
        raise NotFound("no open session {target} of yours", target=target)
    audit.record(conn, actor=actor.label, action="user.logout", object_type="staff_session",
                 object_id=target)


def list_sessions(conn: Connection, *, actor: Actor,
                  now: datetime | None = None) -> list[dict[str, Any]]:
    """The actor's own open sessions, newest first (the current one marked)."""
    now = now or utcnow()
    rows = conn.execute(select(staff_sessions.c.id, staff_sessions.c.created_at,
                               staff_sessions.c.expires_at, staff_sessions.c.client)
                        .where(staff_sessions.c.user_id == actor.id,
                               staff_sessions.c.ended_at.is_(None),
                               staff_sessions.c.expires_at > now)
                        .order_by(staff_sessions.c.id.desc())).mappings()
    return [{**r, "current": r["id"] == actor.session_id} for r in rows]


# --- account changes ------------------------------------------------------------------------

def _user_row(conn: Connection, username: str) -> Any:
    row = conn.execute(select(staff_users).where(staff_users.c.username == username)).first()
    if row is None:
        raise NotFound("no staff user {username!r}", username=username)
    return row


def _keep_an_admin(conn: Connection, row: Any) -> None:
    """Refuse a change that would leave no active admin (nobody could manage users)."""
    others = conn.execute(select(func.count()).select_from(staff_users).where(
        staff_users.c.role == Role.ADMIN.value, staff_users.c.active.is_(True),
        staff_users.c.id != row.id)).scalar_one()
    if row.role == Role.ADMIN.value and row.active and not others:
        raise Conflict("{username} is the only active admin: make another admin first",
                       username=row.username)


def do_change_password(conn: Connection, *, actor: Actor, current: str, new: str,
                       now: datetime | None = None) -> int:
    """Change one's own password (the current one is asked for); every other session of the
    account ends. Returns how many ended."""
    now = now or utcnow()
    row = _user_row(conn, actor.username)
    if not _verify(row, current):
        raise InvalidInput("current_password: wrong password")
    check_password(new, actor.username)
    conn.execute(update(staff_users).where(staff_users.c.id == row.id).values(
        password_hash=_hasher.hash(new), session_version=row.session_version + 1))
    ended = _end_sessions(conn, user_id=row.id, reason="password", now=now,
                          keep=actor.session_id)
    audit.record(conn, actor=actor.label, action="user.password_change",
                 object_type="staff_user", object_id=row.id, detail={"sessions_ended": ended})
    return ended


def do_update_user(conn: Connection, *, actor: Actor, username: str, role: str | None = None,
                   active: bool | None = None, password: str | None = None,
                   now: datetime | None = None) -> dict[str, Any]:
    """An admin changes another account's role, disables or enables it, or sets a new
    password; any of these ends all of that account's sessions."""
    actor.require(Permission.MANAGE_USERS)
    now = now or utcnow()
    row = _user_row(conn, username)
    values: dict[str, Any] = {}
    if role is not None and _role(role).value != row.role:
        if _role(role) is not Role.ADMIN:
            _keep_an_admin(conn, row)
        values["role"] = _role(role).value
    if active is not None and active != bool(row.active):
        if not active:
            _keep_an_admin(conn, row)
        values["active"] = active
    if password is not None:
        check_password(password, username)
        values["password_hash"] = _hasher.hash(password)
    if not values:
        return _public(conn, row.id)
    values["session_version"] = row.session_version + 1
    conn.execute(update(staff_users).where(staff_users.c.id == row.id).values(**values))
    reason = ("disabled" if values.get("active") is False else
              "role" if "role" in values else "password")
    ended = _end_sessions(conn, user_id=row.id, reason=reason, now=now)
    audit.record(conn, actor=actor.label, action="user.update", object_type="staff_user",
                 object_id=row.id, detail={
                     **{k: v for k, v in values.items() if k in ("role", "active")},
                     "password_set": "password_hash" in values, "sessions_ended": ended})
    return _public(conn, row.id)


def _public(conn: Connection, user_id: int) -> dict[str, Any]:
    return _user_rows(conn, user_id)[0]


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
        raise NotFound("no active staff user {username!r}", username=username)
    return _actor(row)


def list_users(conn: Connection, *, actor: Actor) -> list[dict[str, Any]]:
    actor.require(Permission.MANAGE_USERS)
    return _user_rows(conn)


def _user_rows(conn: Connection, user_id: int | None = None) -> list[dict[str, Any]]:
    query = select(
        staff_users.c.id, staff_users.c.username, staff_users.c.display_name,
        staff_users.c.role, staff_users.c.language, staff_users.c.active,
        staff_users.c.created_at, staff_users.c.last_login_at,
    ).order_by(staff_users.c.id)
    if user_id is not None:
        query = query.where(staff_users.c.id == user_id)
    return [dict(r) for r in conn.execute(query).mappings()]


def do_set_language(conn: Connection, *, actor: Actor, language: str) -> None:
    if language not in ("zh-CN", "en"):
        raise InvalidInput("language: zh-CN or en")
    conn.execute(update(staff_users).where(staff_users.c.id == actor.id)
                 .values(language=language))
    audit.record(conn, actor=actor.label, action="user.set_language", object_type="staff_user",
                 object_id=actor.id, detail={"language": language})


def do_create_api_token(conn: Connection, *, actor: Actor, username: str,
                        label: str = "", days: int = TOKEN_DAYS,
                        now: datetime | None = None) -> str:
    """Create a bearer token for ``username`` that expires in ``days``; only its hash is
    stored."""
    if actor.username != username:
        actor.require(Permission.MANAGE_USERS)
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise InvalidInput("days: 1 to {limit}", limit=MAX_TOKEN_DAYS)
    now = now or utcnow()
    row = conn.execute(select(staff_users.c.id).where(staff_users.c.username == username)).first()
    if row is None:
        raise NotFound("no staff user {username!r}", username=username)
    token = "qy_" + secrets.token_urlsafe(32)
    expires = now + timedelta(days=days)
    conn.execute(api_tokens.insert().values(
        user_id=row.id, token_hash=_token_hash(token), label=label[:128], created_at=now,
        expires_at=expires))
    audit.record(conn, actor=actor.label, action="token.create", object_type="staff_user",
                 object_id=row.id, detail={"label": label[:128], "days": days})
    return token


def token_expiry(expires_at: datetime | None, created_at: datetime) -> datetime:
    """When a token stops working (tokens made before expiry existed: created + 90 days)."""
    return expires_at or created_at + timedelta(days=TOKEN_DAYS)


def actor_for_token(conn: Connection, token: str, now: datetime | None = None) -> Actor | None:
    now = now or utcnow()
    if len(token) > 200:
        return None
    row = conn.execute(
        select(staff_users, api_tokens.c.id.label("token_id"),
               api_tokens.c.expires_at, api_tokens.c.created_at.label("token_created"))
        .join(api_tokens, api_tokens.c.user_id == staff_users.c.id)
        .where(api_tokens.c.token_hash == _token_hash(token), api_tokens.c.revoked_at.is_(None))
    ).first()
    if row is None or not row.active:
        return None
    if token_expiry(row.expires_at, row.token_created) <= now:
        return None
    return _actor(row)


def list_tokens(conn: Connection, *, actor: Actor, username: str | None = None,
                now: datetime | None = None) -> list[dict[str, Any]]:
    """Tokens of one account (one's own unless the actor manages users), newest first."""
    now = now or utcnow()
    query = (select(api_tokens.c.id, api_tokens.c.label, api_tokens.c.created_at,
                    api_tokens.c.expires_at, api_tokens.c.revoked_at,
                    staff_users.c.username)
             .join(staff_users, staff_users.c.id == api_tokens.c.user_id)
             .order_by(api_tokens.c.id.desc()))
    if username is not None and username != actor.username:
        actor.require(Permission.MANAGE_USERS)
    if username is not None:
        query = query.where(staff_users.c.username == username)
    elif not actor.can(Permission.MANAGE_USERS):
        query = query.where(staff_users.c.id == actor.id)
    out = []
    for r in conn.execute(query).mappings():
        expires = token_expiry(r["expires_at"], r["created_at"])
        out.append({**r, "expires_at": expires,
                    "live": r["revoked_at"] is None and expires > now})
    return out


def do_revoke_token(conn: Connection, *, actor: Actor, token_id: int,
                    now: datetime | None = None) -> None:
    """Revoke a token: one's own, or anyone's for a user manager."""
    now = now or utcnow()
    row = conn.execute(select(api_tokens.c.id, api_tokens.c.user_id, api_tokens.c.revoked_at)
                       .where(api_tokens.c.id == token_id)).first()
    if row is None or (row.user_id != actor.id and not actor.can(Permission.MANAGE_USERS)):
        raise NotFound("no token {token_id}", token_id=token_id)
    if row.revoked_at is None:
        conn.execute(update(api_tokens).where(api_tokens.c.id == token_id)
                     .values(revoked_at=now))
    audit.record(conn, actor=actor.label, action="token.revoke", object_type="api_token",
                 object_id=token_id)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

"""What every ``qunyun`` command shares: consoles, exit codes, settings, the runtime."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy import Connection

from qunyun.bootstrap import Runtime, build_runtime
from qunyun.config import Settings
from qunyun.i18n import LANGUAGES, fill
from qunyun.services.errors import ServiceError, in_words
from qunyun.services.users import Actor

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
AsOpt = Annotated[str | None, typer.Option("--as", help="Act as this staff user (their role)")]


class _State:
    db: str | None = None


state = _State()


def settings() -> Settings:
    try:
        s = Settings()
    except ValueError as exc:
        fail(say("bad QUNYUN_ setting: {exc}", exc=exc), EXIT_BAD_INPUT)
    if state.db:
        s = s.model_copy(update={"database_url": state.db})
    return s


def _language() -> str:
    """The team's language without failing: ``fail`` reports a bad setting in it."""
    try:
        return Settings().language
    except ValueError:
        return LANGUAGES[0]


def say(key: str, /, **values: Any) -> str:
    """A catalog text in the team's language (``QUNYUN_LANGUAGE``), ``{name}``s filled."""
    return fill(key, values, settings().language)


def refused(exc: ServiceError) -> str:
    """What a service refused, in the team's language (``QUNYUN_LANGUAGE``)."""
    return in_words(exc, settings().language)


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    label = fill("cli.error", {}, _language())
    err.print(f"[red]{escape(label)}[/red]{escape(message)}", highlight=False)
    raise typer.Exit(code)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str, indent=None) + "\n")


@contextmanager
def runtime(s: Settings | None = None, *, migrate: bool = False) -> Iterator[Runtime]:
    """Build the runtime; service errors become exit 2, other failures exit 1."""
    rt = None
    try:
        rt = build_runtime(s or settings())
        if migrate:
            from qunyun.adapters.storage import migrate as migrations

            migrations.upgrade(rt.engine)
        else:
            _require_migrated(rt)
        yield rt
    except ServiceError as exc:
        fail(refused(exc), EXIT_BAD_INPUT)
    except typer.Exit:
        raise
    except Exception as exc:
        logging.getLogger(__name__).debug("command failed", exc_info=True)
        fail(f"{type(exc).__name__}: {exc}")
    finally:
        if rt is not None:
            rt.close()


def _require_migrated(rt: Runtime) -> None:
    from qunyun.adapters.storage import migrate as migrations

    current = migrations.current_revision(rt.engine)
    if current != migrations.head_revision():
        fail(say("database at {url} is not migrated (at {revision}); run: qunyun db upgrade",
                 url=rt.settings.resolved_database_url(), revision=current or "—"))


def acting(rt: Runtime, as_user: str | None) -> Actor:
    """Who is acting: ``--as`` a staff user (their role), else the system."""
    from qunyun.services.users import SYSTEM, actor_by_username

    with rt.uow.read() as conn:
        return actor_by_username(conn, as_user) if as_user else SYSTEM


@contextmanager
def session(as_user: str | None, *, write: bool) -> Iterator[tuple[Runtime, Connection, Actor]]:
    """A runtime, a connection (one transaction when ``write``) and who is acting."""
    from qunyun.services.users import SYSTEM, actor_by_username

    with runtime() as rt, (rt.uow.write() if write else rt.uow.read()) as conn:
        actor = actor_by_username(conn, as_user) if as_user else SYSTEM
        yield rt, conn, actor


def done(as_json: bool, data: Any, message: str) -> None:
    """The result as JSON, or its one message printed as it is: no markup is read in it (a
    name from a chat such as ``[red]王[/red]`` or ``[/]`` prints as written)."""
    if as_json:
        emit_json(data)
    else:
        console.print(message, highlight=False, markup=False)

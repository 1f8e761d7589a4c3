"""``qunyun tasks …``: staff tasks."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from qunyun.cli.common import (
    AsOpt,
    JsonOpt,
    console,
    emit_json,
    runtime,
    say,
    session,
)
from qunyun.cli.options import (
    OrderOpt,
    PageOpt,
    PerPageOpt,
    SortOpt,
    listing_of,
    page_line,
    paged_json,
)
from qunyun.i18n import spoken

tasks_app = typer.Typer(help="Staff tasks", no_args_is_help=True)


@tasks_app.command("list")
def tasks_list(all_: Annotated[bool, typer.Option("--all")] = False,
               search: Annotated[str, typer.Option(
                   "--search", help="Words in the title, reason, group or member")] = "",
               sort: SortOpt = "", order: OrderOpt = "", page: PageOpt = 1,
               per_page: PerPageOpt = 50, as_json: JsonOpt = False) -> None:
    """Show staff tasks (open ones unless --all; sort: id, due, kind, group, status)."""
    from qunyun.services import tasks
    from qunyun.services.users import SYSTEM

    listing = listing_of(search, sort, order, page, per_page)
    with runtime() as rt, rt.uow.read() as conn:
        result = tasks.page_tasks(conn, actor=SYSTEM, status=None if all_ else "open",
                                  listing=listing)
    if as_json:
        emit_json(paged_json(result))
        return
    table = Table("id", say("status"), say("what"), say("why"), say("group"), say("member"))
    for r in result.rows:
        table.add_row(str(r["id"]), say(f"status.{r['status']}"),
                      spoken(tasks.title_words(r), rt.settings.language),
                      spoken(tasks.reason_words(r), rt.settings.language),
                      str(r["group_name"] or ""), str(r["member_name"] or ""))
    console.print(table)
    console.print(page_line(result), highlight=False)


@tasks_app.command("done")
def tasks_done(task_id: int, outcome: str = "", dismiss: bool = False) -> None:
    """Mark a staff task done (or dismissed)."""
    from qunyun.services import tasks
    from qunyun.services.users import SYSTEM

    with runtime() as rt, rt.uow.write() as conn:
        tasks.do_complete_task(conn, actor=SYSTEM, task_id=task_id, outcome=outcome,
                               dismiss=dismiss, now=rt.now())
    console.print(say("task {task_id} dismissed", task_id=task_id) if dismiss
                  else say("task {task_id} done", task_id=task_id))


def inbox(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """What needs a person today: open tasks, follow-ups due today, moderation reviews,
    open health alerts and failed sends, each with where it is handled."""
    from qunyun.services.inbox import get_inbox

    with session(as_user, write=False) as (rt, conn, actor):
        box = get_inbox(conn, actor=actor, clock=rt.clock())
    if as_json:
        emit_json(box.as_dict())
        return
    if not box.total:
        console.print(say("inbox.empty"))
        return
    for entry in box.entries:
        if entry.count:
            console.print(f"[bold]{escape(say('inbox.' + entry.kind))}[/bold] {entry.count}  "
                          f"[dim]{entry.link}[/dim]", highlight=False)
            for item in entry.items:
                console.print(f"  · {escape(str(item['text']))}", highlight=False)

"""``qunyun outbox …``: the delivery outbox."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from qunyun.cli.common import (
    EXIT_BAD_INPUT,
    JsonOpt,
    console,
    emit_json,
    fail,
    runtime,
    say,
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

outbox_app = typer.Typer(help="The delivery outbox", no_args_is_help=True)




@outbox_app.command("list")
def outbox_list(status: str = "", search: Annotated[str, typer.Option(
                    "--search", help="Words in the group, rule or error")] = "",
                sort: SortOpt = "", order: OrderOpt = "", page: PageOpt = 1,
                per_page: PerPageOpt = 50, as_json: JsonOpt = False) -> None:
    """Show outbox rows, newest first (sort: id, group, status, attempts, next_attempt)."""
    from qunyun.services import outbox
    from qunyun.services.users import SYSTEM

    if status and status not in outbox.STATUSES:
        fail(say("--status: one of {statuses}", statuses=', '.join(outbox.STATUSES)),
             EXIT_BAD_INPUT)
    listing = listing_of(search, sort, order, page, per_page)
    with runtime() as rt, rt.uow.read() as conn:
        result = outbox.page_outbox(conn, actor=SYSTEM, status=status or None,
                                    listing=listing)
        counts = outbox.outbox_counts(conn)
    if as_json:
        emit_json(paged_json(result, counts=counts))
        return
    table = Table("id", say("status"), say("action"), say("group"), say("attempts"), say("error"))
    for r in result.rows:
        table.add_row(str(r["id"]), say(f"status.{r['status']}"),
                      say(f"atype.{r['action_type']}"), str(r["group_name"] or ""),
                      str(r["attempts"]), r["last_error"][:60])
    console.print(table)
    console.print(page_line(result), highlight=False)
    console.print(" · ".join(f"{say('status.' + k)} {v}" for k, v in counts.items() if v),
                  highlight=False)


@outbox_app.command("retry")
def outbox_retry(outbox_id: int) -> None:
    """Give a dead row another round of attempts."""
    from qunyun.services import outbox
    from qunyun.services.users import SYSTEM

    with runtime() as rt, rt.uow.write() as conn:
        outbox.do_retry(conn, actor=SYSTEM, outbox_id=outbox_id, now=rt.now())
    console.print(say("outbox row {outbox_id} will be retried", outbox_id=outbox_id))

"""``qunyun`` command line. Exit codes: 0 ok, 1 failure, 2 bad input or usage.

Every command that reports something accepts ``--json`` for machine-readable output.
"""
from __future__ import annotations

import logging
from typing import Annotated

import typer

from qunyun.cli import activities as activities_cli
from qunyun.cli import automation as automation_cli
from qunyun.cli import broadcasts as broadcasts_cli
from qunyun.cli import crm
from qunyun.cli import db as db_cli
from qunyun.cli import entry as entry_cli
from qunyun.cli import exports as exports_cli
from qunyun.cli import fission as fission_cli
from qunyun.cli import groups as groups_cli
from qunyun.cli import imports as imports_cli
from qunyun.cli import join_codes as join_codes_cli
from qunyun.cli import outbox as outbox_cli
from qunyun.cli import plans as plans_cli
from qunyun.cli import playbooks as playbooks_cli
from qunyun.cli import reports as reports_cli
from qunyun.cli import scripts as scripts_cli
from qunyun.cli import serve as serve_cli
from qunyun.cli import tasks as tasks_cli
from qunyun.cli import telegram as telegram_cli
from qunyun.cli import users as users_cli
from qunyun.cli import wecom as wecom_cli
from qunyun.cli.common import state

app = typer.Typer(help="群运 qunyun — community operations", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
app.add_typer(db_cli.db_app, name="db")
app.add_typer(wecom_cli.wecom_app, name="wecom")
app.add_typer(telegram_cli.telegram_app, name="telegram")
app.add_typer(entry_cli.entry_app, name="entry")
app.add_typer(fission_cli.fission_app, name="fission")
app.add_typer(groups_cli.groups_app, name="groups")
app.add_typer(plans_cli.plan_app, name="plan")
app.add_typer(join_codes_cli.join_app, name="join-codes")
app.add_typer(users_cli.users_app, name="users")
app.add_typer(outbox_cli.outbox_app, name="outbox")
app.add_typer(tasks_cli.tasks_app, name="tasks")
app.add_typer(db_cli.native_app, name="native")
app.add_typer(crm.members_app, name="members")
app.add_typer(crm.tags_app, name="tags")
app.add_typer(crm.segments_app, name="segments")
app.add_typer(crm.leads_app, name="leads")
app.add_typer(automation_cli.automation_app, name="automation")
app.add_typer(automation_cli.moderate_app, name="moderate")
app.add_typer(automation_cli.faq_app, name="faq")
app.add_typer(automation_cli.checkins_app, name="checkins")
app.add_typer(automation_cli.draws_app, name="draws")
app.command("simulate")(automation_cli.simulate)
app.add_typer(scripts_cli.scripts_app, name="scripts")
app.add_typer(playbooks_cli.playbook_app, name="playbook")
app.add_typer(broadcasts_cli.broadcast_app, name="broadcast")
app.command("timeline")(playbooks_cli.timeline_cmd)
app.add_typer(activities_cli.activities_app, name="activities")
app.add_typer(reports_cli.report_app, name="report")
app.add_typer(reports_cli.analytics_app, name="analytics")
app.command("ingest")(imports_cli.ingest)
app.command("import")(imports_cli.import_exports)
app.command("import-snapshot")(imports_cli.import_snapshot)
app.command("status")(db_cli.status)
app.command("inbox")(tasks_cli.inbox)
app.command("worker")(serve_cli.worker)
app.command("serve")(serve_cli.serve)
app.command("demo")(serve_cli.demo)
app.command("export")(exports_cli.export_cmd)


@app.callback()
def main(
    db: Annotated[str | None, typer.Option("--db", help="Database URL (else QUNYUN_DATABASE_URL, "
                                           "else ./var/qunyun.db)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    state.db = db
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

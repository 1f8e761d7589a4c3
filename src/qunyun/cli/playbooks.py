"""``qunyun playbook …`` (SOP playbooks: steps, groups, pause, shift, skip, dry run, the
samples) and ``qunyun timeline``. Times are read in the team's time zone."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from qunyun import sample_playbooks
from qunyun.cli.common import (
    EXIT_BAD_INPUT,
    AsOpt,
    JsonOpt,
    console,
    done,
    emit_json,
    fail,
    say,
    session,
    settings,
)
from qunyun.cli.options import (
    AllOpt,
    GroupsOpt,
    SegmentOpt,
    SeriesOpt,
    SetOpt,
    TagOpt,
    delta_option,
    local_option,
    set_values,
    target_of,
)
from qunyun.i18n import Term, said
from qunyun.services import playbooks, pushes, scripts, timeline
from qunyun.services.members import member_id_by_number

playbook_app = typer.Typer(help="SOP playbooks: steps, groups, pause, shift, dry run",
                           no_args_is_help=True)


@playbook_app.command("list")
def playbook_list(as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    with session(as_user, write=False) as (_rt, conn, actor):
        rows = playbooks.list_playbooks(conn, actor=actor)
    if as_json:
        emit_json(rows)
        return
    table = Table("id", say("name"), say("status"), say("step"), say("groups"),
                  say("campaign start"))
    for r in rows:
        table.add_row(str(r["id"]), r["name"], say(f"content.status.{r['status']}"),
                      str(r["step_count"]),
                      str(r["group_count"]), str(r["campaign_start"] or ""))
    console.print(table)


@playbook_app.command("show")
def playbook_show(playbook: Annotated[str, typer.Argument(help="Playbook id or name")],
                  as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    with session(as_user, write=False) as (rt, conn, actor):
        pb = playbooks.find_playbook(conn, actor=actor, ref=playbook)
        tz = rt.settings.tz
    if as_json:
        emit_json(pb)
        return
    start = (say("content.on_state_when", state=say(f"gstate.{pb['on_state']}"))
             if pb["on_state"] else say("campaign start") + f" {pb['campaign_start'] or '—'}")
    console.print(f"[bold]{escape(pb['name'])}[/bold] "
                  f"{say('content.status.' + pb['status'])} · "
                  f"{len(pb['groups'])} 个群 · {escape(start)}")
    table = Table(say("step"), "时间", "名称", "话术", "对象", "下次")
    for s in pb["steps"]:
        nxt = s["next_run_at"].astimezone(tz).strftime("%m-%d %H:%M") if s["next_run_at"] else (
            "已跳过" if s["skipped"] else s["job_status"] or "")
        table.add_row(str(s["id"]), s["at"], s["name"], s["script_name"],
                      said(s["target_text"], settings().language), nxt)
    console.print(table)


@playbook_app.command("create")
def playbook_create(
    name: Annotated[str, typer.Option(help="Unique name")],
    start: Annotated[str | None, typer.Option(help="Campaign start (T), 2026-12-01 20:00")] = None,
    groups: GroupsOpt = None, description: Annotated[str, typer.Option()] = "",
    on_state: Annotated[str, typer.Option(
        "--on-state", help="Run in each group entering this state (planned, recruiting, "
                           "active, cooling, dissolving, closed): T is the move")] = "",
    set_: SetOpt = None, as_json: JsonOpt = False, as_user: AsOpt = None,
) -> None:
    with session(as_user, write=True) as (rt, conn, actor):
        ids = pushes.check_target(conn, actor=actor, target={"groups": groups}) if groups \
            else None
        pb = playbooks.do_create_playbook(
            conn, actor=actor, name=name, description=description,
            campaign_start=local_option(start, rt.settings.tz, "--start"),
            variables=set_values(set_), group_ids=ids["groups"] if ids else (),
            on_state=on_state)
    done(as_json, pb, say("playbook {id} {name} created", id=pb['id'], name=pb['name']))


@playbook_app.command("add-step")
def playbook_add_step(
    playbook: Annotated[str, typer.Argument(help="Playbook id or name")],
    at: Annotated[str, typer.Option(help="daily 08:00 | weekly 周一 09:00 | holiday 09:00 | "
                                         "at 2026-12-01 20:00 | T-2d 20:00 | T-1h | T+30m")],
    script: Annotated[str, typer.Option(help="Script id or name")],
    name: Annotated[str, typer.Option(help="Step name")] = "",
    if_quieter_than: Annotated[int | None, typer.Option(
        help="Only in groups with fewer member messages in the last hour")] = None,
    groups: GroupsOpt = None, group_tag: TagOpt = None, series: SeriesOpt = None,
    all_groups: AllOpt = False, segment: SegmentOpt = None,
    as_json: JsonOpt = False, as_user: AsOpt = None,
) -> None:
    with session(as_user, write=True) as (rt, conn, actor):
        pid = playbooks.find_playbook(conn, actor=actor, ref=playbook)["id"]
        sid = scripts.find_script(conn, actor=actor, ref=script)["id"]
        step = playbooks.do_add_step(conn, actor=actor, playbook_id=pid, tz=rt.settings.tz,
                                     values={"at": at, "script_id": sid, "name": name,
                                             "max_messages_last_hour": if_quieter_than,
                                             "target": target_of(groups, group_tag, series,
                                                               all_groups, segment)})
    done(as_json, step, say("step {id} added ({at}); next: {next_run_at}", id=step['id'],
                            at=step['at'], next_run_at=step['next_run_at']))


@playbook_app.command("attach")
def playbook_attach(playbook: Annotated[str, typer.Argument(help="Playbook id or name")],
                    groups: Annotated[str, typer.Argument(help="Group ids, 1,2,3")],
                    detach: Annotated[bool, typer.Option(help="Detach instead")] = False,
                    as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    with session(as_user, write=True) as (_rt, conn, actor):
        pid = playbooks.find_playbook(conn, actor=actor, ref=playbook)["id"]
        ids = pushes.check_target(conn, actor=actor, target={"groups": groups})
        assert ids is not None
        pb = playbooks.do_attach_groups(conn, actor=actor, playbook_id=pid,
                                        group_ids=ids["groups"], detach=detach)
    done(as_json, pb, say("playbook {pid} runs in {n_groups} groups", pid=pid,
                          n_groups=len(pb['groups'])))


def _set_status(playbook: str, status: str, as_json: bool, as_user: str | None) -> None:
    with session(as_user, write=True) as (rt, conn, actor):
        pid = playbooks.find_playbook(conn, actor=actor, ref=playbook)["id"]
        pb = playbooks.do_update_playbook(conn, actor=actor, playbook_id=pid,
                                          changes={"status": status}, tz=rt.settings.tz)
    done(as_json, pb, say("playbook {pid} is {status}", pid=pid,
                          status=Term("content.status", status)))


@playbook_app.command("pause")
def playbook_pause(playbook: Annotated[str, typer.Argument(help="Playbook id or name")],
                   as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    _set_status(playbook, playbooks.PAUSED, as_json, as_user)


@playbook_app.command("resume")
def playbook_resume(playbook: Annotated[str, typer.Argument(help="Playbook id or name")],
                    as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    _set_status(playbook, playbooks.ACTIVE, as_json, as_user)


@playbook_app.command("shift")
def playbook_shift(playbook: Annotated[str, typer.Argument(help="Playbook id or name")],
                   by: Annotated[str | None, typer.Option(help="Move by 1d, -2h, 1d30m")] = None,
                   to: Annotated[str | None, typer.Option(help="New start, 2026-12-02 20:00")]
                   = None,
                   as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    if (by is None) == (to is None):
        fail(say("give --by or --to"), EXIT_BAD_INPUT)
    with session(as_user, write=True) as (rt, conn, actor):
        pid = playbooks.find_playbook(conn, actor=actor, ref=playbook)["id"]
        pb = playbooks.do_shift_campaign(conn, actor=actor, playbook_id=pid,
                                         by=delta_option(by) if by else None,
                                         to=local_option(to, rt.settings.tz, "--to"),
                                         tz=rt.settings.tz)
    missed = f"; passed, will not run: {', '.join(pb['missed'])}" if pb["missed"] else ""
    done(as_json, pb, say("campaign start is now {campaign_start}{missed}",
                          campaign_start=pb['campaign_start'], missed=missed))


@playbook_app.command("skip")
def playbook_skip(playbook: Annotated[str, typer.Argument(help="Playbook id or name")],
                  step: Annotated[int, typer.Argument(help="Step id")],
                  once: Annotated[bool, typer.Option(help="Only its next occurrence")] = False,
                  undo: Annotated[bool, typer.Option(help="Run the step again")] = False,
                  as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    with session(as_user, write=True) as (rt, conn, actor):
        pid = playbooks.find_playbook(conn, actor=actor, ref=playbook)["id"]
        row = playbooks.do_skip_step(conn, actor=actor, playbook_id=pid, step_id=step,
                                     skipped=not undo, once=once, tz=rt.settings.tz)
    done(as_json, row, say("step {step}: next run {value}", step=step,
                           value=row['next_run_at'] or '—'))


def timeline_cmd(
    group: Annotated[int | None, typer.Option("--group", help="Group id")] = None,
    member: Annotated[str | None, typer.Option("--member", help="Member number")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="First day, 2026-12-01 "
                                                             "(default today)")] = None,
    days: Annotated[int, typer.Option(help="How many days")] = 7,
    as_json: JsonOpt = False, as_user: AsOpt = None,
) -> None:
    """Everything a group or member will receive from every playbook and broadcast, placed
    under the caps and quiet hours (campaign steps before routine SOP steps)."""
    if (group is None) == (member is None):
        fail(say("cli.timeline_which"), EXIT_BAD_INPUT)
    try:
        start = date.fromisoformat(from_) if from_ else None
    except ValueError:
        fail(say("--from {day!r}: {problem}", day=from_, problem=say("cli.bad_date")),
             EXIT_BAD_INPUT)
    with session(as_user, write=False) as (rt, conn, actor):
        member_id = member_id_by_number(conn, member) if member is not None else None
        out = timeline.preview_timeline(conn, actor=actor, group_id=group, member_id=member_id,
                                        start=start, days=days, clock=rt.clock())
    if as_json:
        emit_json(out)
        return
    table = Table(*(say(k) for k in ("content.when", "content.source", "content.rank",
                                     "content.recipient", "content.status", "content.text",
                                     "content.why")))
    for r in out["rows"]:
        when = r["due"][5:16].replace("T", " ")
        if r["at"] and r["at"][:16] != r["due"][:16]:
            when += " → " + r["at"][5:16].replace("T", " ")
        table.add_row(when, f"{r['name']} · {r['step']}" if r["step"] else r["name"],
                      say(f"content.rank.{r['rank']}"), r["recipient"],
                      say(f"content.st.{r['status']}"), r["text"][:30],
                      r["reason"] or r.get("condition", ""))
    console.print(table)
    console.print(" · ".join(f"{say('content.st.' + k)} {v}" for k, v in out["counts"].items())
                  or say("content.nothing_planned"))


@playbook_app.command("preview")
def playbook_preview(
    playbook: Annotated[str, typer.Argument(help="Playbook id or name")],
    from_: Annotated[str | None, typer.Option("--from", help="First day, 2026-12-01 "
                                                             "(default today, or 2 days "
                                                             "before a campaign ahead)")] = None,
    days: Annotated[int, typer.Option(help="How many days")] = 7,
    as_json: JsonOpt = False, as_user: AsOpt = None,
) -> None:
    """Dry run: every message that would go out, where and when, with caps applied."""
    try:
        start = date.fromisoformat(from_) if from_ else None
    except ValueError:
        fail(say("--from {from_!r}: write a date like 2026-12-01", from_=from_), EXIT_BAD_INPUT)
    with session(as_user, write=False) as (rt, conn, actor):
        pid = playbooks.find_playbook(conn, actor=actor, ref=playbook)["id"]
        out = playbooks.preview_playbook(conn, actor=actor, playbook_id=pid, start=start,
                                         days=days, clock=rt.clock())
    if as_json:
        emit_json(out)
        return
    table = Table("计划", "发送", "步骤", "对象", "状态", "内容", "说明")
    for r in out["rows"]:
        table.add_row(r["due"][5:16].replace("T", " "), (r["at"] or "")[5:16].replace("T", " "),
                      r["step"], r["recipient"], say(f"content.st.{r['status']}"), r["text"][:30],
                      r["reason"] or r.get("condition", ""))
    console.print(table)
    console.print(" · ".join(f"{k} {v}" for k, v in out["counts"].items()) or "nothing to send")
    for note in out["notes"]:
        console.print(f"[yellow]{note}[/yellow]")


@playbook_app.command("samples")
def playbook_samples(
    groups: Annotated[str, typer.Option(help="Groups for the launch day, 1,2,3,4,5,6")],
    start: Annotated[str, typer.Option(help="Launch start, 2026-12-01 20:00")],
    daily_groups: Annotated[str | None, typer.Option(help="Groups for the daily SOP")] = None,
    as_json: JsonOpt = False, as_user: AsOpt = None,
) -> None:
    """Install the sample launch-day playbook and a daily SOP with their scripts."""
    with session(as_user, write=True) as (rt, conn, actor):
        launch = pushes.check_target(conn, actor=actor, target={"groups": groups})
        daily = pushes.check_target(conn, actor=actor, target={"groups": daily_groups}) \
            if daily_groups else None
        begin = local_option(start, rt.settings.tz, "--start")
        assert launch is not None and begin is not None
        ids = sample_playbooks.install(conn, actor=actor, group_ids=launch["groups"],
                                           campaign_start=begin, tz=rt.settings.tz,
                                           daily_group_ids=daily["groups"] if daily else ())
    done(as_json, ids, ", ".join(f"{k}: {v}" for k, v in ids.items()))


# --- broadcasts ---------------------------------------------------------------------------

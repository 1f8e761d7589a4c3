"""``qunyun groups …``: the group registry and lifecycle — list and show groups, edit their
settings (type, tags, capacity, start, cooling thresholds), move a group's state (only as
the lifecycle allows: a closed group stays closed), the lifecycle board, and the rules'
round on demand."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from qunyun.cli.common import AsOpt, JsonOpt, console, done, emit_json, say, session
from qunyun.cli.options import delta_option, local_option
from qunyun.services import dissolution, group_merges, group_roles, lifecycle, lurkers
from qunyun.services import groups as groups_service
from qunyun.services.members import member_id_by_number

groups_app = typer.Typer(help="Groups: registry, settings and lifecycle", no_args_is_help=True)


def _state(code: str) -> str:
    return say(f"gstate.{code}")


@groups_app.command("list")
def groups_list(state: Annotated[str | None, typer.Option(
                    "--state", help="planned, recruiting, active, cooling, dissolving, closed")
                    ] = None,
                as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Every group with its type, state, members and capacity."""
    with session(as_user, write=False) as (_rt, conn, actor):
        rows = [r for r in groups_service.list_groups(conn, actor=actor)
                if state is None or r["state"] == state]
    if as_json:
        emit_json(rows)
        return
    table = Table("#", say("groups.name"), say("groups.platform"), say("groups.type"),
                  say("groups.state"), say("groups.members"))
    for r in rows:
        table.add_row(str(r["id"]), escape(r["name"] or r["external_id"]),
                      say(f"platform.{r['platform']}"),
                      say(f"gtype.{r['group_type']}"), _state(r["state"]),
                      f"{r['members']}/{r['capacity']}")
    console.print(table, highlight=False)


def _show(group: dict[str, Any], tz: Any) -> str:
    tags = "、".join(group["settings"].get("tags") or []) or "—"
    since = group.get("state_since")
    lines = [f"#{group['id']} {group['name'] or group['external_id']}",
             f"{say('groups.type')}: {say('gtype.' + group['group_type'])}",
             f"{say('groups.state')}: {_state(group['state'])}"
             + (f"（{since.astimezone(tz):%Y-%m-%d %H:%M}）" if since else ""),
             f"{say('groups.members')}: {group['member_count']}/{group['capacity']}",
             f"{say('group.tags')}: {tags}",
             f"{say('group.next_states')}: "
             + ("、".join(_state(s) for s in group["next_states"]) or "—")]
    return "\n".join(lines)


@groups_app.command("show")
def groups_show(group: int, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """One group's settings, state and where its state may go."""
    with session(as_user, write=False) as (rt, conn, actor):
        row = groups_service.get_group_detail(conn, actor=actor, group_id=group)
        row.pop("members", None)
        row.pop("recent_messages", None)
        tz = rt.settings.tz
    if as_json:
        emit_json(row)
        return
    console.print(_show(row, tz), highlight=False, markup=False)


@groups_app.command("edit")
def groups_edit(
        group: int,
        name: Annotated[str | None, typer.Option("--name")] = None,
        group_type: Annotated[str | None, typer.Option(
            "--type", help="temporary, long_term, fan, agent, learning")] = None,
        capacity: Annotated[int | None, typer.Option("--capacity")] = None,
        series: Annotated[str | None, typer.Option("--series")] = None,
        tag: Annotated[list[str] | None, typer.Option(
            "--tag", help="the group's tags (repeat; replaces them); --tag '' clears")] = None,
        rules: Annotated[str | None, typer.Option("--rules")] = None,
        announcement: Annotated[str | None, typer.Option("--announcement")] = None,
        starts_at: Annotated[str | None, typer.Option(
            "--starts-at", help="local time, e.g. 2026-12-10 20:00; '' clears")] = None,
        cooling_speakers: Annotated[int | None, typer.Option("--cooling-speakers")] = None,
        cooling_days: Annotated[int | None, typer.Option("--cooling-days")] = None,
        cooling_health: Annotated[int | None, typer.Option(
            "--cooling-health", help="a health score (0–100) under which it cools; 0: off")
        ] = None,
        state: Annotated[str | None, typer.Option(
            "--state", help="move it (only as the lifecycle allows)")] = None,
        reason: Annotated[str, typer.Option("--reason", help="why (with --state)")] = "",
        as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Change a group's settings and/or move its state, in one transaction."""
    with session(as_user, write=True) as (rt, conn, actor):
        changes: dict[str, Any] = {k: v for k, v in {
            "name": name, "group_type": group_type, "capacity": capacity, "series": series,
            "rules_text": rules, "announcement": announcement,
            "cooling_speakers": cooling_speakers, "cooling_days": cooling_days,
            "cooling_health": cooling_health}.items()
            if v is not None}
        if tag is not None:
            changes["tags"] = [t for t in tag if t.strip()]
        if starts_at is not None:
            changes["starts_at"] = (local_option(starts_at, rt.settings.tz, "--starts-at")
                                    if starts_at.strip() else None)
        lifecycle.do_edit_group(conn, actor=actor, group_id=group, changes=changes,
                                state=state, reason=reason, now=rt.now(),
                                tz=rt.settings.tz)
        row = groups_service.get_group_detail(conn, actor=actor, group_id=group)
        row.pop("members", None)
        row.pop("recent_messages", None)
        tz = rt.settings.tz
    done(as_json, row, _show(row, tz))


@groups_app.command("board")
def groups_board(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Groups by lifecycle state, each with what needs doing."""
    with session(as_user, write=False) as (rt, conn, actor):
        columns = lifecycle.board(conn, actor=actor, now=rt.now(), tz=rt.settings.tz)
    if as_json:
        emit_json(columns)
        return
    for column in columns:
        if not column["groups"]:
            continue
        console.print(f"[bold]{_state(column['state'])}[/bold]（{len(column['groups'])}）")
        for g in column["groups"]:
            console.print(f"  #{g['id']} {g['name']}  {g['members']}/{g['capacity']}  "
                          f"{say(g['todo'])}", highlight=False, markup=False)


@groups_app.command("advance")
def groups_advance(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Run the lifecycle rules now (the worker does it hourly); print the moves."""
    with session(as_user, write=True) as (rt, conn, actor):
        moves = lifecycle.do_advance(conn, actor=actor, now=rt.now(), tz=rt.settings.tz)
    if as_json:
        emit_json(moves)
        return
    for m in moves:
        console.print(f"#{m['group_id']} {m['name']}: {_state(m['from'])} → {_state(m['to'])}"
                      f"（{say('lifecycle.why.' + m['why'], **m['values'])}）",
                      highlight=False, markup=False)
    if not moves:
        console.print(say("lifecycle.no_moves"), highlight=False)


@groups_app.command("plan")
def groups_plan(platform: Annotated[str, typer.Option("--platform")],
                name: Annotated[str, typer.Option("--name")],
                group_type: Annotated[str, typer.Option("--type")] = "temporary",
                capacity: Annotated[int, typer.Option("--capacity")] = 200,
                starts_at: Annotated[str | None, typer.Option("--starts-at")] = None,
                as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Plan a group before its chat exists (planned; link the chat later)."""
    with session(as_user, write=True) as (rt, conn, actor):
        row = lifecycle.do_plan_group(
            conn, actor=actor, platform=platform, name=name, group_type=group_type,
            capacity=capacity, starts_at=local_option(starts_at, rt.settings.tz, "--starts-at")
            if starts_at else None, now=rt.now())
    done(as_json, row, f"#{row['id']} {row['name']}: {_state(row['state'])}")


@groups_app.command("link")
def groups_link(group: int, chat: Annotated[str, typer.Option(
                    "--chat", help="the platform's id of the group chat")],
                as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Tie a planned group to its chat; the plan is kept."""
    with session(as_user, write=True) as (rt, conn, actor):
        row = lifecycle.do_link_chat(conn, actor=actor, group_id=group, chat_id=chat,
                                     now=rt.now())
    done(as_json, row, f"#{row['id']} {row['name']} → {row['external_id']}")


@groups_app.command("lurkers")
def groups_lurkers(
        group: int,
        days: Annotated[int, typer.Option("--days", help="silent for this many days")] = 30,
        remove: Annotated[bool, typer.Option("--remove", help="remove them (with a notice)")
                          ] = False,
        member: Annotated[list[int] | None, typer.Option(
            "--member", help="only these member numbers (repeat)")] = None,
        notice: Annotated[str | None, typer.Option(
            "--notice", help="the private notice: {name} {group} {days}; '' for none")] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="show who would go")] = False,
        as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Members silent for N days (never staff or the owner); --remove takes them out."""
    with session(as_user, write=remove and not dry_run) as (rt, conn, actor):
        if not remove:
            rows = lurkers.list_lurkers(conn, actor=actor, group_id=group, days=days,
                                        now=rt.now())
            result: dict[str, Any] = {"removing": rows, "skipped": [], "tasks": 0,
                                      "dry_run": True}
        else:
            ids = None if member is None else [member_id_by_number(conn, n) for n in member]
            result = lurkers.do_remove_lurkers(
                conn, actor=actor, group_id=group, days=days, member_ids=ids, notice=notice,
                dry_run=dry_run, capabilities=rt.capabilities, now=rt.now())
        tz = rt.settings.tz
    if as_json:
        emit_json(result if remove else result["removing"])
        return
    table = Table(say("members.number"), say("members.name"), say("member.joined"),
                  say("lurkers.last_said"), say("member.channel"), say("lurkers.activities"))
    for r in result["removing"]:
        last = r["last_message_at"]
        table.add_row(str(r["number"]), escape(r["name"]),
                      f"{r['joined_at'].astimezone(tz):%Y-%m-%d}",
                      f"{last.astimezone(tz):%Y-%m-%d}" if last else say("lurkers.never"),
                      escape(r["channel"]), str(r["activities"]))
    console.print(table, highlight=False)
    if remove:
        key = "lurkers.would_remove" if result["dry_run"] else "lurkers.removed"
        console.print(say(key, n=len(result["removing"]), tasks=result["tasks"]),
                      highlight=False)


@groups_app.command("dissolve")
def groups_dissolve(
        group: int,
        gap: Annotated[str, typer.Option("--gap", help="between steps, e.g. 1h, 30m, 1d")] = "1d",
        notice: Annotated[str | None, typer.Option("--notice", help="where members go next")
                          ] = None,
        rename: Annotated[str | None, typer.Option("--rename", help="the group's last name")
                          ] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="show the steps only")] = False,
        as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Start the dissolution SOP: notice → grey avatar → rename → dismiss, with gaps."""
    with session(as_user, write=not dry_run) as (rt, conn, actor):
        result = dissolution.do_dissolve(
            conn, actor=actor, group_id=group, gap=delta_option(gap), notice=notice,
            new_name=rename, dry_run=dry_run, capabilities=rt.capabilities, now=rt.now())
        tz = rt.settings.tz
    if as_json:
        emit_json(result)
        return
    for step in result["steps"]:
        when = step["at"].astimezone(tz)
        console.print(f"{when:%m-%d %H:%M}  {say('dissolve.step.' + step['kind'])}"
                      f"（{say('dissolve.by.' + step['by'])}）", highlight=False)
    if result["dry_run"]:
        console.print(say("dissolve.dry_run"), highlight=False)


@groups_app.command("admins")
def groups_admins(
        group: int,
        add: Annotated[int | None, typer.Option("--add", help="a member number")] = None,
        remove: Annotated[int | None, typer.Option("--remove", help="a member number")] = None,
        role: Annotated[str, typer.Option(
            "--role", help="owner, presenter, expert, atmosphere, advisor")] = "presenter",
        as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Who does what in the group for the team; --add/--remove a member's role."""
    with session(as_user, write=add is not None or remove is not None) as (rt, conn, actor):
        if add is not None or remove is not None:
            number = add if add is not None else remove
            rows = group_roles.do_set_role(
                conn, actor=actor, group_id=group,
                member_id=member_id_by_number(conn, str(number)), role=role,
                remove=remove is not None, now=rt.now())
        else:
            rows = group_roles.list_roles(conn, actor=actor, group_id=group)
    if as_json:
        emit_json(rows)
        return
    table = Table(say("grole.title"), say("members.number"), say("members.name"),
                  say("grole.in_group"))
    for r in rows:
        table.add_row(say(f"grole.{r['role']}"), str(r["number"]), escape(r["name"]),
                      say("grole.yes") if r["in_group"] else say("grole.no"))
    console.print(table, highlight=False)


@groups_app.command("merge-candidates")
def groups_merge_candidates(
        max_members: Annotated[int, typer.Option("--max-members", min=1, max=2000)] = 50,
        max_messages: Annotated[int, typer.Option(
            "--max-messages", min=0, help="member messages in the last --days days")] = 20,
        days: Annotated[int, typer.Option("--days", min=1, max=365)] = 7,
        as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Running groups small or quiet enough to merge, the smallest first."""
    with session(as_user, write=False) as (rt, conn, actor):
        rows = group_merges.candidates(conn, actor=actor, max_members=max_members,
                                       max_messages=max_messages, days=days, now=rt.now())
    if as_json:
        emit_json(rows)
        return
    table = Table("#", say("groups.name"), say("groups.state"), say("groups.members"),
                  say("merge.messages", days=days))
    for r in rows:
        table.add_row(str(r["id"]), escape(r["name"]), _state(r["state"]), str(r["members"]),
                      str(r["messages"]))
    console.print(table, highlight=False)


def _print_merge(merge: dict[str, Any]) -> None:
    for d in merge["destinations"]:
        console.print(say("merge.destination", name=d["name"], assigned=d["assigned"],
                          invited=d["invited"], joined=d["joined"]),
                      highlight=False, markup=False)
    for s in merge["sources_now"]:
        console.print(f"  {s['name']} · {_state(s['state'])}", highlight=False, markup=False)


@groups_app.command("merge")
def groups_merge(
        source: Annotated[list[int], typer.Option("--from", help="a group to merge (repeat)")],
        into: Annotated[int, typer.Option("--into", help="the target group")],
        overflow: Annotated[int | None, typer.Option(
            "--overflow", help="where those the target cannot hold go (default: a group "
                               "planned for them)")] = None,
        text: Annotated[str | None, typer.Option(
            "--text", help="the invitation; {group} {target} {link}")] = None,
        wait: Annotated[str, typer.Option(
            "--wait", help="then the emptied groups dissolve, e.g. 3d")] = "3d",
        gap: Annotated[str, typer.Option("--gap", help="the dissolution's gap")] = "1d",
        dry_run: Annotated[bool, typer.Option("--dry-run", help="show the plan only")] = False,
        as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Merge small groups into one: members invited (most active first while the target
    has room, the rest to an overflow group), then the emptied groups dissolve."""
    with session(as_user, write=not dry_run) as (rt, conn, actor):
        result = group_merges.do_merge(
            conn, actor=actor, source_ids=source, target_id=into, overflow_id=overflow,
            invite=text, wait=delta_option(wait), gap=delta_option(gap), dry_run=dry_run,
            capabilities=rt.capabilities, now=rt.now())
        tz = rt.settings.tz
    if as_json:
        emit_json(result)
        return
    target, spill = result["target"], result["overflow"]
    console.print(say("merge.plan", n=result["moving"], target=target["name"],
                      a=target["members"], room=target["room"]), highlight=False, markup=False)
    if spill:
        console.print(say("merge.overflow", name=spill["name"], n=spill["members"]),
                      highlight=False, markup=False)
    console.print(say("merge.finish_at", when=f"{result['finish_at'].astimezone(tz):%m-%d %H:%M}"),
                  highlight=False)
    if result["dry_run"]:
        console.print(say("dissolve.dry_run"), highlight=False)
    else:
        _print_merge(result)


@groups_app.command("merges")
def groups_merges(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Merges, newest first, with how many moved."""
    with session(as_user, write=False) as (_rt, conn, actor):
        rows = group_merges.list_merges(conn, actor=actor)
    if as_json:
        emit_json(rows)
        return
    for m in rows:
        console.print(f"#{m['id']} {say('merge.status.' + m['status'])} · "
                      f"{m['joined']}/{m['assigned']}", highlight=False)
        _print_merge(m)


@groups_app.command("merge-show")
def groups_merge_show(merge: int, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """One merge: each member's move (invited, joined)."""
    with session(as_user, write=False) as (_rt, conn, actor):
        row = group_merges.access_merge(conn, actor=actor, merge_id=merge)
    if as_json:
        emit_json(row)
        return
    _print_merge(row)
    for p in row["people"]:
        mark = say("merge.joined") if p["joined"] else (
            say("merge.invited") if p["invited"] else say("merge.waiting"))
        console.print(f"  {p['number']} {p['name']} · {mark}", highlight=False, markup=False)


@groups_app.command("merge-finish")
def groups_merge_finish(merge: int, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """End the merge now: the emptied groups start dissolving."""
    with session(as_user, write=True) as (rt, conn, actor):
        row = group_merges.do_finish(conn, actor=actor, merge_id=merge,
                                     capabilities=rt.capabilities, now=rt.now())
    done(as_json, row, say("merge {id} finished", id=merge))

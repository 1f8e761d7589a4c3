"""``qunyun members | tags | segments | leads``: the member CRM from the command line.

Commands act as the system administrator unless ``--as USER`` names a staff account, whose
role then decides what is allowed and whether phone numbers are masked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Connection

from qunyun.cli.common import (
    EXIT_BAD_INPUT,
    AsOpt,
    JsonOpt,
    console,
    emit_json,
    err,
    fail,
    say,
)
from qunyun.cli.common import done as _done
from qunyun.cli.common import session as _session
from qunyun.cli.options import (
    OrderOpt,
    PageOpt,
    PerPageOpt,
    SortOpt,
    listing_of,
    page_line,
    paged_json,
)
from qunyun.services import (
    attributes,
    blacklist,
    leads,
    merges,
    profiles,
    records,
    segments,
    tags,
)
from qunyun.services.members import member_id_by_number, page_members
from qunyun.services.users import Actor

members_app = typer.Typer(help="Members: search, profile, tags, notes, blacklist, merge",
                          no_args_is_help=True)
tags_app = typer.Typer(help="Tags and rule tags", no_args_is_help=True)
segments_app = typer.Typer(help="Saved member segments", no_args_is_help=True)
leads_app = typer.Typer(help="Lead lists: ranked segments for sales", no_args_is_help=True)

# --- members ------------------------------------------------------------------------------

@members_app.command("search")
def members_search(query: Annotated[str, typer.Argument()] = "",
                   segment: Annotated[str | None, typer.Option(
                       help="Only members of this segment (saved name or expression)")] = None,
                   who: Annotated[str, typer.Option(
                       help="staff or customers (default: everyone)")] = "",
                   sort: SortOpt = "", order: OrderOpt = "", page: PageOpt = 1,
                   per_page: PerPageOpt = 50, as_user: AsOpt = None,
                   as_json: JsonOpt = False) -> None:
    """Find members by number or nickname (sort: number, name, last_seen, first_seen), or
    list a segment's members; one page at a time with the total."""
    listing = listing_of(query, sort, order, page, per_page)
    with _session(as_user, write=False) as (rt, conn, actor):
        expr = (segments.resolve_expression(conn, actor=actor, segment=segment)[0]
                if segment else "")
        result = page_members(conn, actor=actor, listing=listing, who=who, segment=expr,
                              clock=rt.clock())
    if as_json:
        emit_json(paged_json(result))
        return
    table = Table(say("number"), say("name"), say("group"), say("last seen"))
    for r in result.rows:
        name = r["display_name"] + (f" ({say('members.staff')})" if r.get("staff") else "")
        table.add_row(str(r["number"]), name, "、".join(r.get("groups", [])[:2]),
                      f"{r['last_seen_at']:%Y-%m-%d}")
    console.print(table)
    console.print(page_line(result), highlight=False)


@members_app.command("show")
def members_show(number: str, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """A member's profile and timeline."""
    with _session(as_user, write=False) as (rt, conn, actor):
        member_id = member_id_by_number(conn, number)
        p = profiles.get_member_profile(conn, actor=actor, member_id=member_id,
                                        now=rt.clock().now)
    if as_json:
        emit_json(p)
        return
    console.print(say("[bold]{number}[/bold] {display_name}  phone {value}", number=p['number'],
                      display_name=escape(p['display_name']), value=p['phone'] or '-'),
                  highlight=False)
    if p["blacklist"]:
        console.print(say("[red]blacklisted[/red]: {reason}",
                          reason=escape(p["blacklist"]["reason"])), highlight=False)
    console.print(say("tags: {tags}", tags=", ".join(t["name"] for t in p["tags"])),
                  highlight=False, markup=False)
    console.print(say("groups: {groups}",
                      groups=", ".join(m["group_name"] for m in p["memberships"])),
                  highlight=False, markup=False)
    for a in p["attributes"]:
        console.print(f"  {a['name']} = {a['value_text']}", highlight=False, markup=False)
    for item in p["timeline"][:30]:
        console.print(f"  {item['at']:%Y-%m-%d %H:%M} {item['kind']:<16} {item['group']} "
                      f"{item['text']}", highlight=False)


@members_app.command("tag")
def members_tag(number: str, tag: Annotated[str, typer.Argument(help="group/name or name")],
                reason: str = "", as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Put a manual tag on a member (the tag is created when new)."""
    with _session(as_user, write=True) as (_, conn, actor):
        added = tags.do_tag_member(conn, actor=actor, member_id=member_id_by_number(conn, number),
                                   tag=tag, reason=reason)
    _done(as_json, {"number": number, "tag": tag, "added": added},
          say("{number}: tagged {tag}", number=number, tag=tag) if added
          else say("{number}: already had {tag}", number=number, tag=tag))


@members_app.command("untag")
def members_untag(number: str, tag: str, reason: str = "", as_user: AsOpt = None,
                  as_json: JsonOpt = False) -> None:
    """Take a manual tag off a member."""
    with _session(as_user, write=True) as (_, conn, actor):
        removed = tags.do_untag_member(conn, actor=actor,
                                       member_id=member_id_by_number(conn, number), tag=tag,
                                       reason=reason)
    _done(as_json, {"number": number, "tag": tag, "removed": removed},
          say("{number}: removed {tag}", number=number, tag=tag) if removed
          else say("{number}: did not have {tag}", number=number, tag=tag))


@members_app.command("note")
def members_note(number: str, text: str,
                 kind: Annotated[str, typer.Option(help="note, call or follow_up")] = "note",
                 due: Annotated[str | None, typer.Option(
                     help="Follow-up due time, e.g. 2026-12-01T10:00 (team time zone)")] = None,
                 as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Write a service record (note, call or follow-up) on a member's timeline."""
    with _session(as_user, write=True) as (rt, conn, actor):
        due_at = records.parse_due(due or "", rt.settings.tz)
        record_id = records.do_add_record(conn, actor=actor,
                                          member_id=member_id_by_number(conn, number),
                                          kind=kind, body=text, due_at=due_at)
    _done(as_json, {"number": number, "record": record_id, "kind": kind},
          say("{number}: {kind} #{record_id} written", number=number, kind=kind,
              record_id=record_id))


@members_app.command("blacklist")
def members_blacklist(number: str, reason: Annotated[str, typer.Option(help="Why")],
                      days: Annotated[int | None, typer.Option(
                          help="Expire after this many days (else until lifted)")] = None,
                      as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Bar a member: removed from every group they are in and whenever they join one,
    refused for new activities."""
    expires = datetime.now(UTC) + timedelta(days=days) if days else None
    with _session(as_user, write=True) as (rt, conn, actor):
        entry = blacklist.do_blacklist(conn, actor=actor,
                                       member_id=member_id_by_number(conn, number),
                                       reason=reason, expires_at=expires,
                                       capabilities=rt.capabilities)
    _done(as_json, {"number": number, "entry": entry.id, "removals": entry.removals,
                    "expires_at": expires},
          say("{number}: blacklisted until {day}; removal from {n} group(s) queued",
              number=number, day=f"{expires:%Y-%m-%d}", n=entry.removals) if expires
          else say("{number}: blacklisted; removal from {n} group(s) queued", number=number,
                   n=entry.removals))


@members_app.command("unblacklist")
def members_unblacklist(number: str, reason: str = "", as_user: AsOpt = None,
                        as_json: JsonOpt = False) -> None:
    """Lift a member's blacklist entry (kept in history)."""
    with _session(as_user, write=True) as (_, conn, actor):
        blacklist.do_lift(conn, actor=actor, member_id=member_id_by_number(conn, number),
                          reason=reason)
    _done(as_json, {"number": number, "lifted": True}, say("{number}: blacklist lifted",
                                                           number=number))


@members_app.command("merge")
def members_merge(source: Annotated[str, typer.Argument(help="Member number merged away")],
                  target: Annotated[str, typer.Argument(help="Member number that stays")],
                  reason: str = "", as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Merge two members that are one person (undo with `members unmerge`)."""
    with _session(as_user, write=True) as (_, conn, actor):
        merge_id = merges.do_merge(conn, actor=actor,
                                   source_id=member_id_by_number(conn, source),
                                   target_id=member_id_by_number(conn, target), reason=reason)
    _done(as_json, {"merge": merge_id, "source": source, "target": target},
          say("merged {source} into {target} (merge #{merge_id}; undo: qunyun members "
              "unmerge {merge_id})",
              source=source, target=target, merge_id=merge_id))


@members_app.command("unmerge")
def members_unmerge(merge_id: int, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Undo a merge: everything it moved goes back."""
    with _session(as_user, write=True) as (_, conn, actor):
        merges.do_undo_merge(conn, actor=actor, merge_id=merge_id)
    _done(as_json, {"merge": merge_id, "undone": True}, say("merge #{merge_id} undone",
                                                            merge_id=merge_id))


@members_app.command("suggestions")
def members_suggestions(limit: int = 100, as_user: AsOpt = None,
                        as_json: JsonOpt = False) -> None:
    """Pairs of members that look like one person, with the reason."""
    with _session(as_user, write=False) as (_, conn, actor):
        found = merges.merge_suggestions(conn, actor=actor, limit=limit)
    if as_json:
        emit_json(found)
        return
    table = Table(say("member"), say("member"), say("why"))
    for s in found:
        table.add_row(f"{s['a']['number']} {s['a']['display_name']}",
                      f"{s['b']['number']} {s['b']['display_name']}", ", ".join(s["reasons"]))
    console.print(table)


@members_app.command("import-attributes")
def members_import_attributes(
        path: Path,
        key: Annotated[str | None, typer.Option(
            help="Key column (else found by header: 会员编号/member_number, unionid, wxid, "
                 "手机号/phone)")] = None,
        as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Join a spreadsheet (CSV) onto members as custom attributes; unmatched rows listed."""
    with _session(as_user, write=True) as (_, conn, actor):
        report = attributes.do_import_attributes(conn, actor=actor, path=path, key=key)
    data = report.as_dict()
    if as_json:
        emit_json(data)
        return
    console.print(say("{path}: {rows} rows, {matched} matched by {key_column}, {attributes_set} "
                      "values set ({columns}); {n_unmatched} unmatched, {n_ambiguous} ambiguous",
                      path=path, rows=report.rows, matched=report.matched,
                      key_column=report.key_column,
                      attributes_set=report.attributes_set,
                      columns=', '.join(report.columns),
                      n_unmatched=len(report.unmatched),
                      n_ambiguous=len(report.ambiguous)), highlight=False)
    for row in (report.unmatched + report.ambiguous)[:20]:
        err.print(say("  {path}:{line}: key {key!r} matched {members} members", path=path,
                      line=row['line'], key=row['key'], members=row['members']), highlight=False)


@members_app.command("set-attr")
def members_set_attr(number: str, name: str, value: str, as_user: AsOpt = None,
                     as_json: JsonOpt = False) -> None:
    """Set one custom attribute by hand (an empty value clears it)."""
    with _session(as_user, write=True) as (_, conn, actor):
        attributes.do_set_attribute(conn, actor=actor,
                                    member_id=member_id_by_number(conn, number), name=name,
                                    value=value)
    _done(as_json, {"number": number, "name": name, "value": value},
          f"{number}: {name} = {value}")


@members_app.command("attributes")
def members_attributes(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Custom attributes: personal data or not, what kind, how many members hold each."""
    with _session(as_user, write=False) as (_, conn, actor):
        rows = attributes.list_attribute_fields(conn, actor=actor)
    if as_json:
        emit_json(rows)
        return
    table = Table(say("attribute"), say("personal"), say("kind"), say("members"))
    for r in rows:
        table.add_row(r["name"], say("yes") if r["personal"] else say("no"), r["kind"],
                      str(r["members"]))
    console.print(table)


@members_app.command("mark-attribute")
def members_mark_attribute(
        name: str,
        personal: Annotated[bool, typer.Option(
            "--personal/--not-personal",
            help="Personal data (masked for viewers, not filterable by them) or not")],
        as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Mark a custom attribute as personal data or not (admins; every attribute starts as
    personal)."""
    with _session(as_user, write=True) as (_, conn, actor):
        row = attributes.do_mark_attribute(conn, actor=actor, name=name, personal=personal)
    _done(as_json, row, say("{name}: personal", name=name) if personal
          else say("{name}: not personal", name=name))


# --- tags ---------------------------------------------------------------------------------

@tags_app.command("list")
def tags_list(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Tags with their member counts."""
    with _session(as_user, write=False) as (_, conn, actor):
        rows = tags.list_tags(conn, actor=actor)
    if as_json:
        emit_json(rows)
        return
    table = Table("id", say("group"), say("name"), say("kind"), say("members"), say("rule"))
    for r in rows:
        table.add_row(str(r["id"]), r["tag_group"], r["name"], r["kind"], str(r["members"]),
                      r["rule"])
    console.print(table)


@tags_app.command("create")
def tags_create(name: str, group: str = "", color: str = "", description: str = "",
                rule: Annotated[str | None, typer.Option(
                    help="Segment expression: makes a rule tag kept true automatically")]
                = None,
                as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Create a manual tag, or a rule tag (applied to everyone it matches at once)."""
    with _session(as_user, write=True) as (rt, conn, actor):
        tag_id = tags.do_create_tag(conn, actor=actor, name=name, group=group, color=color,
                                    kind="rule" if rule else "manual", rule=rule or "",
                                    description=description, clock=rt.clock())
        count = next(t["members"] for t in tags.list_tags(conn, actor=actor)
                     if t["id"] == tag_id)
    _done(as_json, {"id": tag_id, "name": name, "group": group, "members": count},
          say("tag #{tag_id} {tag}: {count} members", tag_id=tag_id,
              tag=f"{group}/{name}" if group else name, count=count))


@tags_app.command("recompute")
def tags_recompute(tag: Annotated[str | None, typer.Argument(help="One rule tag (else all)")]
                   = None, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Re-check rule tags against everyone (after imports or rule changes)."""
    with _session(as_user, write=True) as (rt, conn, actor):
        result = tags.do_recompute_rule_tags(conn, actor=actor, clock=rt.clock(), tag=tag)
    _done(as_json, result, "\n".join(f"{k}: +{v['added']} -{v['removed']}"
                                     for k, v in result.items()) or "no rule tags")


# --- segments -------------------------------------------------------------------------------

@segments_app.command("list")
def segments_list(counts: Annotated[bool, typer.Option(help="Count each segment now")] = False,
                  as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Saved segments (with live counts when asked)."""
    with _session(as_user, write=False) as (rt, conn, actor):
        rows = segments.list_segments(conn, actor=actor)
        if counts:
            for r in rows:
                r["members"] = segments.count_expression(conn, actor=actor,
                                                         expression=r["expression"],
                                                         clock=rt.clock())
    if as_json:
        emit_json(rows)
        return
    table = Table("id", say("name"), say("expression"), *(("members",) if counts else ()))
    for r in rows:
        table.add_row(str(r["id"]), r["name"], r["expression"],
                      *((str(r["members"]),) if counts else ()))
    console.print(table)


@segments_app.command("create")
def segments_create(name: str, expression: str, description: str = "",
                    as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Save a segment, e.g. 'series = "奥数" and attr.错题率 > 30%'."""
    with _session(as_user, write=True) as (rt, conn, actor):
        segment_id = segments.do_create_segment(conn, actor=actor, name=name,
                                                expression=expression, description=description)
        saved = segments.get_segment(conn, actor=actor, segment_id=segment_id)
        count = segments.count_expression(conn, actor=actor, expression=saved["expression"],
                                          clock=rt.clock())
    _done(as_json, {"id": segment_id, "name": name, "expression": saved["expression"],
                    "members": count}, say("segment #{segment_id} {name}: {count} members",
                                           segment_id=segment_id, name=name, count=count))


@segments_app.command("count")
def segments_count(segment: Annotated[str, typer.Argument(
                       help="Saved segment (id or name) or an expression")],
                   as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Count a segment now."""
    with _session(as_user, write=False) as (rt, conn, actor):
        expr, name = segments.resolve_expression(conn, actor=actor, segment=segment)
        count = segments.count_expression(conn, actor=actor, expression=expr, clock=rt.clock())
    _done(as_json, {"segment": name, "expression": expr, "members": count}, str(count))


@segments_app.command("delete")
def segments_delete(segment: str, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Delete a saved segment (refused while a lead list uses it)."""
    with _session(as_user, write=True) as (_, conn, actor):
        seg = segments.find_segment(conn, actor=actor, ref=segment)
        segments.do_delete_segment(conn, actor=actor, segment_id=seg["id"])
    _done(as_json, {"id": seg["id"], "deleted": True}, say("segment {name} deleted",
                                                           name=seg['name']))


# --- leads ----------------------------------------------------------------------------------

def _lead_source(conn: Connection, actor: Actor, segment: str | None, list_name: str | None,
                 formula: str | None) -> tuple[str, str, str]:
    if list_name:
        saved = leads.find_lead_list(conn, actor=actor, ref=list_name)
        return saved["expression"], formula or saved["formula"], saved["name"]
    if not segment:
        fail(say("give --segment or --list"), EXIT_BAD_INPUT)
    expr, name = segments.resolve_expression(conn, actor=actor, segment=segment)
    return expr, formula or leads.DEFAULT_FORMULA, name


SegmentOpt = Annotated[str | None, typer.Option(
    help="Segment: saved name/id or an expression")]
ListOpt = Annotated[str | None, typer.Option("--list", help="A saved lead list")]
FormulaOpt = Annotated[str | None, typer.Option(
    help="Scoring formula, e.g. '1 * messages[30d] @14d + 20 * (tag = \"问过价格\")'")]


@leads_app.command("show")
def leads_show(segment: SegmentOpt = None, list_name: ListOpt = None,
               formula: FormulaOpt = None, limit: int = 20, as_user: AsOpt = None,
               as_json: JsonOpt = False) -> None:
    """The top of a lead list, with why each member scored."""
    with _session(as_user, write=False) as (rt, conn, actor):
        expr, form, _ = _lead_source(conn, actor, segment, list_name, formula)
        rows, total = leads.score(conn, actor=actor, expression=expr, formula=form,
                                  clock=rt.clock(), limit=limit,
                                  language=rt.settings.language)
    if as_json:
        emit_json({"segment": expr, "formula": form, "members": total,
                   "rows": [r.as_dict() for r in rows]})
        return
    table = Table("#", say("number"), say("name"), say("score"), say("why"), say("phone"))
    for r in rows:
        table.add_row(str(r.rank), str(r.number), r.name, f"{r.score:.1f}", r.why, r.phone)
    console.print(table)
    console.print(say("{total} members in the segment", total=total), highlight=False)


@leads_app.command("export")
def leads_export(out: Annotated[Path, typer.Option(help="File to write (.csv or .xlsx)")],
                 segment: SegmentOpt = None, list_name: ListOpt = None,
                 formula: FormulaOpt = None,
                 fmt: Annotated[str | None, typer.Option(
                     "--format", help="csv or xlsx (else from the file name)")] = None,
                 language: str = "zh-CN", as_user: AsOpt = None,
                 as_json: JsonOpt = False) -> None:
    """Export a ranked lead list (audited; phones masked for roles without PII access)."""
    chosen = fmt or out.suffix.lstrip(".").lower()
    with _session(as_user, write=True) as (rt, conn, actor):
        expr, form, name = _lead_source(conn, actor, segment, list_name, formula)
        body, rows = leads.do_export_leads(conn, actor=actor, expression=expr, formula=form,
                                           clock=rt.clock(), fmt=chosen, language=language,
                                           source=name)
        try:
            out.write_bytes(body)
        except OSError as exc:
            fail(f"{out}: {exc.strerror or exc}", EXIT_BAD_INPUT)
    _done(as_json, {"file": str(out), "format": chosen, "rows": rows, "segment": expr,
                    "formula": form}, say("{rows} rows written to {out}", rows=rows, out=out))


@leads_app.command("save")
def leads_save(name: str, segment: Annotated[str, typer.Option(help="Saved segment")],
               formula: Annotated[str, typer.Option(help="Scoring formula")],
               as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Save a named lead list (a saved segment + a formula)."""
    with _session(as_user, write=True) as (_, conn, actor):
        list_id = leads.do_save_lead_list(conn, actor=actor, name=name, segment=segment,
                                          formula=formula)
    _done(as_json, {"id": list_id, "name": name}, say("lead list #{list_id} {name} saved",
                                                      list_id=list_id, name=name))


@leads_app.command("list")
def leads_list(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Saved lead lists."""
    with _session(as_user, write=False) as (_, conn, actor):
        rows = leads.list_lead_lists(conn, actor=actor)
    if as_json:
        emit_json(rows)
        return
    table = Table("id", say("name"), say("segment"), say("formula"))
    for r in rows:
        table.add_row(str(r["id"]), r["name"], r["segment_name"], r["formula"])
    console.print(table)

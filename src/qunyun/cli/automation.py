"""``qunyun automation | moderate | faq | checkins | draws``: group automation (issue 5).

``moderate classify`` and ``faq match`` work on files alone (no database), for evaluation
and scripting: one JSON line out per line in, in order.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.table import Table

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
)
from qunyun.cli.common import settings as settings
from qunyun.cli.options import (
    OrderOpt,
    PageOpt,
    PerPageOpt,
    SortOpt,
    listing_of,
    page_line,
    paged_json,
)
from qunyun.domain.automation import SECTIONS
from qunyun.engine.faq import FaqIndex
from qunyun.engine.moderation import SEVERITIES
from qunyun.services import automation, checkins, draws, faqs, moderation
from qunyun.services.errors import InvalidInput
from qunyun.services.members import member_id_by_number

automation_app = typer.Typer(help="Automation settings per team and group",
                             no_args_is_help=True)
moderate_app = typer.Typer(help="Moderation: classify, word lists, review queue",
                           no_args_is_help=True)
words_app = typer.Typer(help="Moderation word lists", no_args_is_help=True)
moderate_app.add_typer(words_app, name="words")
faq_app = typer.Typer(help="FAQ replies: match, import, list", no_args_is_help=True)
checkins_app = typer.Typer(help="Check-ins, points, leaderboards, refunds",
                           no_args_is_help=True)
draws_app = typer.Typer(help="Lotteries and red-packet draws", no_args_is_help=True)

GroupOpt = Annotated[int | None, typer.Option("--group", help="Group id (default: the team)")]


def _lines(path: Path | None) -> Iterator[str]:
    stream: TextIO
    if path is None:
        stream = sys.stdin
    else:
        try:
            stream = path.open(encoding="utf-8-sig")
        except OSError as exc:
            fail(f"{path}: {exc.strerror}", EXIT_BAD_INPUT)
    with stream:
        for line in stream:
            yield line.rstrip("\r\n")


# --- automation settings ------------------------------------------------------------------

@automation_app.command("show")
def automation_show(group: GroupOpt = None, as_json: JsonOpt = False,
                    as_user: AsOpt = None) -> None:
    """Effective settings (team defaults merged with the group's overrides)."""
    with session(as_user, write=False) as (_rt, conn, actor):
        data = automation.get_settings(conn, actor=actor, group_id=group or automation.TEAM)
    if as_json:
        emit_json(data)
        return
    for section, values in data["effective"].items():
        own = data["own"].get(section, {})
        console.print(f"[bold]{section}[/bold]")
        for key, value in values.items():
            mark = " *" if key in own else ""
            console.print(f"  {key} = {json.dumps(value, ensure_ascii=False)}{mark}",
                          highlight=False)
    console.print(say("(* set here)"))


@automation_app.command("set")
def automation_set(section: str, assignments: Annotated[list[str], typer.Argument(
        help="KEY=VALUE; VALUE is JSON when it parses (true, 0.8, [\"a\"]), else text")],
                   group: GroupOpt = None, as_json: JsonOpt = False,
                   as_user: AsOpt = None) -> None:
    """Change settings of one section: ``qunyun automation set faq enabled=true``."""
    if section not in SECTIONS:
        fail(say("section: one of {sections}", sections=', '.join(SECTIONS)), EXIT_BAD_INPUT)
    values: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            fail(say("{item!r}: expected KEY=VALUE", item=item), EXIT_BAD_INPUT)
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    with session(as_user, write=True) as (_rt, conn, actor):
        data = automation.do_update_settings(conn, actor=actor, section=section, values=values,
                                             group_id=group or automation.TEAM)
    done(as_json, data, say("{section} updated", section=section))


# --- moderation ---------------------------------------------------------------------------

@moderate_app.command("classify")
def moderate_classify(
    input_file: Annotated[Path | None, typer.Option("--input", help="One text per line "
                                                    "(default: stdin)")] = None,
    words: Annotated[list[Path] | None, typer.Option("--words", help="A word list file "
                                                     "(repeatable)")] = None,
    severity: Annotated[str, typer.Option(help="Severity of --words lists")] = "weak",
    as_json: JsonOpt = False,
) -> None:
    """Classify each line: verdict (ok | review | block), score and reasons."""
    if severity not in SEVERITIES:
        fail(say("--severity: one of {severities}", severities=', '.join(SEVERITIES)),
             EXIT_BAD_INPUT)
    try:
        clf = moderation.file_classifier(list(words or []), severity)
    except InvalidInput as exc:
        fail(str(exc), EXIT_BAD_INPUT)
    for line in _lines(input_file):
        verdict = clf.classify(line)
        if as_json:
            emit_json(verdict.to_json())
        else:
            why = moderation.reasons_in(verdict.reasons, settings().language)
            console.print(f"{verdict.verdict:6} {verdict.score:.2f}  {line[:60]}  "
                          f"[dim]{why}[/dim]", highlight=False)


@moderate_app.command("queue")
def moderate_queue(status: str = "pending", group: GroupOpt = None,
                   search: Annotated[str, typer.Option(
                       "--search", help="Words in the message, group or member")] = "",
                   sort: SortOpt = "", order: OrderOpt = "", page: PageOpt = 1,
                   per_page: PerPageOpt = 50, as_json: JsonOpt = False,
                   as_user: AsOpt = None) -> None:
    """Moderation decisions (the review queue by default; ``--status ''`` for all; sort:
    id, score, group, action)."""
    listing = listing_of(search, sort, order, page, per_page)
    with session(as_user, write=False) as (_rt, conn, actor):
        result = moderation.page_decisions(conn, actor=actor, status=status or None,
                                           group_id=group, listing=listing)
    rows = result.rows
    if as_json:
        emit_json(paged_json(result))
        return
    table = Table("id", *(say(k) for k in ("auto.group", "auto.member", "auto.verdict",
                                            "auto.score", "auto.step", "auto.status",
                                            "auto.text", "auto.reasons")))
    for r in rows:
        table.add_row(str(r["id"]), r["group_name"] or "", r["member_name"] or "",
                      say(f"auto.verdict.{r['verdict']}"), f"{r['score']:.2f}",
                      say(f"auto.step.{r['action']}"), say(f"auto.status.{r['status']}"),
                      r["text"][:30], moderation.reasons_in(r["reasons"][:2], settings().language))
    console.print(table)
    console.print(page_line(result), highlight=False)


@moderate_app.command("review")
def moderate_review(decision_id: int,
                    confirm: Annotated[bool, typer.Option("--confirm/--overturn",
                                                          help="Violation or not")] = True,
                    restore: Annotated[bool, typer.Option(
                        "--restore/--no-restore",
                        help="Overturning a removal: let them back in (default)")] = True,
                    as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    """Decide a message: --confirm carries out the escalation step on a queued one;
    --overturn clears any decision, also one already acted on (it stops counting, lifts the
    blacklist it caused, cancels or undoes its removals)."""
    with session(as_user, write=True) as (rt, conn, actor):
        row = moderation.do_review(conn, actor=actor, decision_id=decision_id, confirm=confirm,
                                   capabilities=rt.capabilities, restore=restore)
    undone = row.get("undone") or {}
    done(as_json, row, say("cli.review_done", id=decision_id,
                           status=say(f"auto.status.{row['status']}"),
                           step=say(f"auto.step.{row['action']}"))
         + (say("cli.review_undone", **undone) if any(undone.values()) else ""))


@words_app.command("load")
def words_load(path: Path, severity: Annotated[str, typer.Option(
        help="block: blocks alone; review: queues; weak: adds weight only")] = "weak",
               name: str = "", as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    """Load a word list (one term per line, UTF-8 or GB18030); a list of that name is replaced."""
    with session(as_user, write=True) as (_rt, conn, actor):
        data = moderation.do_load_word_file(conn, actor=actor, path=path, severity=severity,
                                            name=name)
    done(as_json, data, say("{name}: {words} words ({severity})", name=data['name'],
                            words=data['words'], severity=data['severity']))


@words_app.command("list")
def words_list(as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    with session(as_user, write=False) as (_rt, conn, actor):
        rows = moderation.list_word_lists(conn, actor=actor)
    if as_json:
        emit_json(rows)
        return
    table = Table("id", "名称", "级别", "词数", "启用", "示例")
    for r in rows:
        table.add_row(str(r["id"]), r["name"], r["severity"], str(r["count"]),
                      "是" if r["enabled"] else "否", "、".join(r["sample"][:5]))
    console.print(table)


# --- FAQ ----------------------------------------------------------------------------------

@faq_app.command("match")
def faq_match(
    faq_file: Annotated[Path, typer.Option("--faq", help="CSV with header id,question,answer")],
    input_file: Annotated[Path | None, typer.Option("--input", help="One question per line "
                                                    "(default: stdin)")] = None,
    min_score: Annotated[float | None, typer.Option(help="Answer from this confidence")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Match each question against an FAQ file: the FAQ id, or null when unsure."""
    try:
        data = faq_file.read_bytes()
    except OSError as exc:
        fail(f"{faq_file}: {exc.strerror}", EXIT_BAD_INPUT)
    try:
        entries = faqs.file_entries(faqs.read_faq_csv(data, str(faq_file)))
    except InvalidInput as exc:
        fail(str(exc), EXIT_BAD_INPUT)
    index = FaqIndex(entries) if min_score is None else FaqIndex(entries, min_score=min_score)
    for line in _lines(input_file):
        found = index.match(line)
        if as_json:
            emit_json({"match": found.id, "score": round(found.score, 4), "how": found.how}
                      if found else {"match": None, "score": 0.0})
        else:
            console.print(f"{found.id if found else '-':>8} "
                          f"{found.score if found else 0:.2f}  {line}", highlight=False)


@faq_app.command("import")
def faq_import(path: Path, group: GroupOpt = None, as_json: JsonOpt = False,
               as_user: AsOpt = None) -> None:
    """Import an FAQ CSV (id,question,answer); an id imported before is replaced."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"{path}: {exc.strerror}", EXIT_BAD_INPUT)
    with session(as_user, write=True) as (_rt, conn, actor):
        out = faqs.do_import_faqs(conn, actor=actor, data=data, name=str(path), group_id=group)
    done(as_json, out, say("{created} created, {replaced} replaced", created=out['created'],
                           replaced=out['replaced']))


@faq_app.command("add")
def faq_add(question: Annotated[list[str], typer.Option("--question", "-q")],
            answer: Annotated[str, typer.Option("--answer", "-a")],
            match: str = "fuzzy", pattern: str = "", cooldown: int = 300,
            group: GroupOpt = None, as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    with session(as_user, write=True) as (_rt, conn, actor):
        faq_id = faqs.do_create_faq(conn, actor=actor, questions=question, answer=answer,
                                    match=match, pattern=pattern, group_id=group,
                                    cooldown_seconds=cooldown)
    done(as_json, {"id": faq_id}, say("FAQ {faq_id} created", faq_id=faq_id))


@faq_app.command("list")
def faq_list(group: GroupOpt = None, as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    with session(as_user, write=False) as (_rt, conn, actor):
        rows = faqs.list_faqs(conn, actor=actor, group_id=group)
    if as_json:
        emit_json(rows)
        return
    table = Table("id", "范围", "匹配", "问题", "回答", "命中", "启用")
    for r in rows:
        table.add_row(str(r["id"]), r["group_name"] or "全部群", r["match"],
                      " / ".join(r["question_list"][:3]), r["answer"][:30], str(r["hits"]),
                      "是" if r["enabled"] else "否")
    console.print(table)


# --- check-ins ----------------------------------------------------------------------------

@checkins_app.command("board")
def checkins_board(group: Annotated[int, typer.Option("--group")], period: str = "week",
                   metric: str = "checkins", as_json: JsonOpt = False,
                   as_user: AsOpt = None) -> None:
    """Leaderboard of a group for a period (day, week, month, all): check-ins or points."""
    with session(as_user, write=False) as (rt, conn, actor):
        data = checkins.leaderboard(conn, actor=actor, group_id=group, period=period,
                                    metric=metric, tz=rt.settings.tz)
    if as_json:
        emit_json(data)
        return
    table = Table("名次", "会员", "昵称", "打卡" if metric == "checkins" else "积分")
    for r in data["rows"]:
        table.add_row(str(r["rank"]), str(r["number"]), r["name"], str(r["value"]))
    console.print(table)


@checkins_app.command("add")
def checkins_add(group: Annotated[int, typer.Option("--group")],
                 member: Annotated[int, typer.Option("--member", help="Member number")],
                 as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    """Record today's check-in for a member (a form submission)."""
    with session(as_user, write=True) as (rt, conn, actor):
        data = checkins.do_form_checkin(conn, actor=actor, group_id=group,
                                        member_id=member_id_by_number(conn, member),
                                        tz=rt.settings.tz)
    done(as_json, data, say("checked in, streak {streak}", streak=data['streak']))


@checkins_app.command("refunds")
def checkins_refunds(group: Annotated[int, typer.Option("--group")],
                     start: Annotated[str, typer.Option("--from", help="YYYY-MM-DD")],
                     end: Annotated[str, typer.Option("--to", help="YYYY-MM-DD")],
                     deposit: Annotated[float, typer.Option()],
                     tiers: Annotated[str, typer.Option(help="e.g. 21:100,15:50 (default: "
                                                        "the group's settings)")] = "",
                     as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    """Deposit refunds by the number of check-ins in a period (for finance)."""
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as exc:
        fail(say("--from/--to: {exc}", exc=exc), EXIT_BAD_INPUT)
    with session(as_user, write=False) as (_rt, conn, actor):
        data = checkins.refunds(conn, actor=actor, group_id=group, start=first, end=last,
                                deposit=deposit,
                                tiers=checkins.parse_tiers(tiers) if tiers else None)
    if as_json:
        emit_json(data)
        return
    table = Table("会员", "昵称", "打卡次数", "退款比例", "退款金额")
    for r in data["rows"]:
        table.add_row(str(r["number"]), r["name"], str(r["checkins"]), f"{r['percent']:g}%",
                      f"{r['refund']:.2f}")
    console.print(table)
    console.print(f"合计退款 {data['total_refund']:.2f}")


# --- draws --------------------------------------------------------------------------------

@draws_app.command("run")
def draws_run(group: Annotated[int, typer.Option("--group")],
              title: Annotated[str, typer.Option()],
              kind: str = "lottery",
              prizes: Annotated[str, typer.Option(help="lottery: 一等奖:1,二等奖:3")] = "",
              amount: Annotated[float, typer.Option(help="red packet: total yuan")] = 0.0,
              count: Annotated[int, typer.Option(help="red packet: winners")] = 0,
              eligible: Annotated[str, typer.Option(help="segment expression, e.g. "
                                                    "'messages[1h] >= 1'")] = "",
              seed: Annotated[str | None, typer.Option(help="fix the seed (default: "
                                                       "random, recorded)")] = None,
              as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    """Draw winners among the group's current members who match --eligible."""
    with session(as_user, write=True) as (rt, conn, actor):
        data = draws.do_draw(conn, actor=actor, group_id=group, title=title, kind=kind,
                             clock=rt.clock(), expression=eligible, prizes=prizes,
                             amount=amount, count=count, seed=seed)
    if as_json:
        emit_json(data)
        return
    console.print(say("draw {id}: {n_eligible} eligible, seed {seed}", id=data['id'],
                      n_eligible=len(data['eligible']), seed=data['seed']))
    for w in data["winners"]:
        console.print(f"  {w['number']} {w['name']}  {w.get('prize', w.get('amount'))}",
                      highlight=False)


@draws_app.command("verify")
def draws_verify(draw_id: int, as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    """Re-run a draw from its recorded seed and eligible list."""
    with session(as_user, write=False) as (_rt, conn, actor):
        data = draws.verify_draw(conn, actor=actor, draw_id=draw_id)
    done(as_json, data, say("verified: the same winners") if data["verified"]
         else say("NOT verified: the winners differ"))
    if not data["verified"]:
        raise typer.Exit(1)


@draws_app.command("list")
def draws_list(group: GroupOpt = None, as_json: JsonOpt = False, as_user: AsOpt = None) -> None:
    with session(as_user, write=False) as (_rt, conn, actor):
        rows = draws.list_draws(conn, actor=actor, group_id=group)
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        console.print(say("{id:>4} {group_name} {title} ({kind}) {created_at:%Y-%m-%d %H:%M} "
                          "seed {seed}", id=r['id'],
                          group_name=r['group_name'], title=r['title'],
                          kind=r['kind'], created_at=r['created_at'],
                          seed=r['seed']), highlight=False)


# --- simulator ----------------------------------------------------------------------------

def simulate(
    groups: Annotated[int, typer.Option(help="Groups to simulate")] = 6,
    members: Annotated[int, typer.Option(help="Members in all")] = 600,
    days: Annotated[int, typer.Option(help="Days of history, ending now")] = 14,
    seed: Annotated[int, typer.Option(help="Same seed, same community")] = 7,
    setup: Annotated[bool, typer.Option(help="Switch on sample automation first "
                                        "(moderation, check-ins, points, FAQs)")] = False,
    prefix: Annotated[str, typer.Option(help="Chat id prefix (run twice with different "
                                        "prefixes for separate communities)")] = "sim-g",
    as_json: JsonOpt = False, as_user: AsOpt = None,
) -> None:
    """Simulate a community through the real event path (sandbox → ingest → rules → outbox)."""
    from qunyun.adapters.platforms.sandbox.simulate import Scenario
    from qunyun.services import simulation

    try:
        scenario = Scenario(groups=groups, members=members, days=days, seed=seed,
                            chat_prefix=prefix)
    except ValueError as exc:
        fail(str(exc), EXIT_BAD_INPUT)
    with session(as_user, write=True) as (rt, conn, actor):
        if setup:
            simulation.do_setup_sample_automation(conn, actor=actor)
    with session(as_user, write=False) as (rt, _conn, actor):
        report = simulation.run_simulation(rt.uow, adapter=rt.adapters["sandbox"],
                                           config=rt.ingest_config, scenario=scenario,
                                           actor=actor)
    data = report.to_json()
    done(as_json, data, say("{events} events; rules fired {rules_fired}; {outbox_rows} outbox rows",
                            events=data['events'], rules_fired=data['rules_fired'],
                            outbox_rows=data['outbox_rows']))

"""``qunyun fission …``: referral campaigns — create with task stages, take part (a member's
own code and link), pause, end, the report (K-factor, top inviters, daily curve, the
invitation tree) and the rewards to hand out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from qunyun.cli.common import (
    AsOpt,
    JsonOpt,
    acting,
    console,
    done,
    emit_json,
    runtime,
    say,
    session,
)
from qunyun.domain.fission import FissionError, parse_stage
from qunyun.services import fission, fission_rehearsal, fission_shots
from qunyun.services.errors import InvalidInput
from qunyun.services.members import member_id_by_number

fission_app = typer.Typer(help="Referral (fission) campaigns: stages, codes, report, rewards",
                          no_args_is_help=True)


@fission_app.command("create")
def fission_create(
    name: Annotated[str, typer.Option("--name")],
    group: Annotated[list[int], typer.Option("--group", help="Entry group id (repeatable)")],
    stage: Annotated[list[str], typer.Option(
        "--stage", help="INVITES:REWARD:STOCK[:COST], e.g. 3:保温杯:100:25.5 (repeatable)")],
    account: Annotated[str, typer.Option(
        help="The connected corp or bot that makes the codes (sandbox: any name)")],
    valid_hours: Annotated[int, typer.Option(
        "--valid-hours", help="An invitee counts once they stayed this long")] = 0,
    completers_group: Annotated[int | None, typer.Option("--completers-group")] = None,
    completers_tag: Annotated[str, typer.Option(
        "--completers-tag", help="Put on completers (default 裂变完成/NAME)")] = "",
    enrol_newcomers: Annotated[bool, typer.Option(
        "--enrol-newcomers/--no-enrol-newcomers",
        help="Newcomers through a code take part with their own poster")] = True,
    as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """A campaign over entry groups; prints it with its id."""
    with session(as_user, write=True) as (rt, conn, actor):
        try:
            stages = [parse_stage(s) for s in stage]
        except FissionError as exc:
            raise InvalidInput.wrap(exc) from None
        out = fission.do_create_campaign(conn, actor=actor, name=name, group_ids=group,
                                         stages=stages, account=account,
                                         valid_hours=valid_hours,
                                         completers_group_id=completers_group,
                                         completers_tag=completers_tag,
                                         enrol_newcomers=enrol_newcomers, now=rt.now())
    done(as_json, out, say("fission campaign {id} created", id=out["id"]))


@fission_app.command("edit")
def fission_edit(
    campaign: int,
    text: Annotated[list[str] | None, typer.Option(
        "--text", help="KIND=TEXT: welcome, progress, done, taken_back, sold_out, claim, "
                       "completers (KIND= alone: the default again; repeatable)")] = None,
    completers_tag: Annotated[str | None, typer.Option("--completers-tag")] = None,
    enrol_newcomers: Annotated[bool | None, typer.Option(
        "--enrol-newcomers/--no-enrol-newcomers")] = None,
    as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """The loop's messages, the completers' tag, whether newcomers take part."""
    texts: dict[str, str] | None = None
    if text:
        texts = {}
        for item in text:
            kind, sep, words = item.partition("=")
            if not sep:
                raise InvalidInput("--text {item!r}: write KIND=TEXT", item=item[:30])
            texts[kind.strip()] = words
    with session(as_user, write=True) as (_rt, conn, actor):
        out = fission.do_update_campaign(conn, actor=actor, campaign_id=campaign, texts=texts,
                                         completers_tag=completers_tag,
                                         enrol_newcomers=enrol_newcomers)
    done(as_json, {**out, "texts_used": fission.texts_of(out)},
         say("fission campaign {id} saved", id=campaign))


@fission_app.command("claim-link")
def fission_claim_link(reward: int, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """A fresh claim link for a reserved reward, to send by hand (the old one stops)."""
    with session(as_user, write=True) as (rt, conn, actor):
        made = fission.do_new_claim_link(conn, actor=actor, reward_id=reward,
                                         public_url=rt.settings.public_url, now=rt.now())
    done(as_json, {"reward": reward, **made}, made["link"])


@fission_app.command("list")
def fission_list(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    with session(as_user, write=False) as (_rt, conn, actor):
        rows = fission.list_campaigns(conn, actor=actor)
    if as_json:
        emit_json(rows)
        return
    table = Table("#", say("fission.name"), say("fission.status"), say("fission.participants"),
                  say("fission.stages"))
    for r in rows:
        table.add_row(str(r["id"]), r["name"], say(f"fission.status.{r['status']}"),
                      str(r["participants"]), "，".join(
                          f"{s['invites']}→{s['reward']}（{s['left']}）" for s in r["stages"]))
    console.print(table, highlight=False)


def _reward(reward: int, status: str, tracking: str, as_user: str | None,
            as_json: bool) -> None:
    with session(as_user, write=True) as (rt, conn, actor):
        out = fission.do_update_reward(conn, actor=actor, reward_id=reward, status=status,
                                       tracking=tracking, now=rt.now())
    done(as_json, out, say("reward {id}: {status}", id=reward,
                           status=say(f"fission.reward_status.{status}")))


@fission_app.command("ship")
def fission_ship(reward: int, tracking: Annotated[str, typer.Option(
        "--tracking", help="The parcel's tracking number")] = "",
                 as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """A reserved reward went out."""
    _reward(reward, "shipped", tracking, as_user, as_json)


@fission_app.command("cancel-reward")
def fission_cancel_reward(reward: int, as_user: AsOpt = None,
                          as_json: JsonOpt = False) -> None:
    """Cancel a reward: its stock returns to the stage."""
    _reward(reward, "cancelled", "", as_user, as_json)


@fission_app.command("show")
def fission_show(campaign: int, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    with session(as_user, write=False) as (_rt, conn, actor):
        out = fission.access_campaign(conn, actor=actor, campaign_id=campaign)
    done(as_json, out, f"#{out['id']} {out['name']} · {say('fission.status.' + out['status'])}")


def _status(campaign: int, status: str, as_user: str | None, as_json: bool) -> None:
    with session(as_user, write=True) as (rt, conn, actor):
        out = fission.do_set_status(conn, actor=actor, campaign_id=campaign, status=status,
                                    now=rt.now())
    done(as_json, out, say("fission campaign {id}: {status}", id=campaign,
                           status=say(f"fission.status.{status}")))


@fission_app.command("pause")
def fission_pause(campaign: int, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Stop crediting joins until resumed."""
    _status(campaign, fission.PAUSED, as_user, as_json)


@fission_app.command("resume")
def fission_resume(campaign: int, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    _status(campaign, fission.ACTIVE, as_user, as_json)


@fission_app.command("end")
def fission_end(campaign: int, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """End for good (codes stop crediting; the report stays)."""
    _status(campaign, fission.ENDED, as_user, as_json)


@fission_app.command("join")
def fission_join(campaign: int, member: Annotated[str, typer.Option(
        "--member", help="The member's number")], as_user: AsOpt = None,
                 as_json: JsonOpt = False) -> None:
    """The member takes part: their own code and link (made once)."""
    with runtime() as rt:
        actor = acting(rt, as_user)
        with rt.uow.read() as conn:
            member_id = member_id_by_number(conn, member)
        out = fission.do_join(rt.uow, actor=actor, adapter_for=rt.adapter,
                              campaign_id=campaign, member_id=member_id, now=rt.now())
    done(as_json, out, say("code {code}: {link}", code=out["code"], link=out["link"]))


@fission_app.command("poster")
def fission_poster(campaign: int, member: Annotated[str, typer.Option("--member")],
                   out: Annotated[Path, typer.Option("--out", help="FILE.png")],
                   as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """A participant's poster with their own code and name."""
    with session(as_user, write=False) as (rt, conn, actor):
        png = fission.poster_for(conn, actor=actor, campaign_id=campaign,
                                 member_id=member_id_by_number(conn, member),
                                 folder=rt.settings.pictures_dir)
    out.write_bytes(png)
    done(as_json, {"written": str(out), "bytes": len(png)},
         say("poster written to {path}", path=str(out)))


@fission_app.command("poster-set")
def fission_poster_set(
    campaign: int,
    background: Annotated[Path | None, typer.Option(help="A PNG or JPEG picture")] = None,
    qr: Annotated[str, typer.Option(help="X,Y,SIZE of the QR code (750×1334 poster)")] = "",
    name: Annotated[str, typer.Option(help="X,Y,SIZE of the name")] = "",
    color: Annotated[str, typer.Option(help="The name's colour, #rrggbb")] = "",
    template: Annotated[str, typer.Option(help="The name's words, with {name}")] = "",
    as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """The poster's layout and background."""
    fields = {"color": color, "template": template}
    for prefix, given in (("qr", qr), ("name", name)):
        parts = [p.strip() for p in given.split(",")] if given else []
        fields.update({f"{prefix}_{k}": v for k, v in zip(("x", "y", "size"), parts,
                                                          strict=False)})
    with session(as_user, write=True) as (rt, conn, actor):
        data = background.read_bytes() if background is not None else None
        out = fission.do_set_poster(conn, actor=actor, campaign_id=campaign,
                                    values=fission.layout_from(fields), background=data,
                                    folder=rt.settings.pictures_dir)
    done(as_json, out["poster"], say("poster of campaign {id} saved", id=campaign))


@fission_app.command("report")
def fission_report(campaign: int, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Participants, valid invites, completions, stock left, K-factor, top inviters, daily."""
    with session(as_user, write=False) as (rt, conn, actor):
        out = fission.report(conn, actor=actor, campaign_id=campaign, tz=rt.settings.tz)
    if as_json:
        emit_json(out)
        return
    k = out["k_factor"]
    console.print(say("fission.summary", participants=out["participants"],
                      invites=out["invites_sent"], valid=out["valid_invites"],
                      completed=out["completed"], k=k["k"]), highlight=False)
    for s in out["stages"]:
        console.print(f"  {s['invites']} → {s['reward']}: {s['taken']}/{s['stock']}",
                      highlight=False, markup=False)
    for t in out["top_inviters"][:10]:
        console.print(f"  {t['name']}  {t['valid_invites']}", highlight=False, markup=False)


@fission_app.command("rewards")
def fission_rewards(campaign: int, export: Annotated[Path | None, typer.Option(
        "--export", help="Write them for the warehouse: FILE.csv or FILE.xlsx")] = None,
                    as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Rewards reserved (to hand out), shipped, cancelled, and stages that ran out."""
    with session(as_user, write=False) as (rt, conn, actor):
        rows: list[dict[str, Any]] = fission.list_rewards(conn, actor=actor,
                                                          campaign_id=campaign)
        if export is not None:
            data = fission.export_rewards(conn, actor=actor, campaign_id=campaign,
                                          fmt=export.suffix.lstrip(".").lower(),
                                          tz=rt.settings.tz, language=rt.settings.language)
    if export is not None:
        export.write_bytes(data)
        done(as_json, {"written": str(export), "rows": len(rows)},
             say("{n} rewards written to {path}", n=len(rows), path=str(export)))
        return
    if as_json:
        emit_json(rows)
        return
    table = Table(say("fission.member"), say("fission.reward"), say("fission.status"))
    for r in rows:
        table.add_row(f"{r['display_name']} ({r['number']})", r["reward"],
                      say(f"fission.reward_status.{r['status']}"))
    console.print(table, highlight=False)


@fission_app.command("shots")
def fission_shots_list(campaign: int, status: Annotated[str, typer.Option(
        help="pending (the queue), approved, declined, or all")] = "pending",
                       as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """The share stage's screenshots waiting for a person (or those decided)."""
    with session(as_user, write=False) as (_rt, conn, actor):
        rows = fission_shots.list_shots(conn, actor=actor, campaign_id=campaign,
                                        status="" if status == "all" else status)
    if as_json:
        emit_json(rows)
        return
    table = Table("#", say("fission.member"), say("fission.status"), say("fission.at"))
    for r in rows:
        table.add_row(str(r["id"]), f"{r['display_name']} ({r['number']})",
                      say(f"fission.shot_status.{r['status']}"),
                      r["created_at"].astimezone(_rt.settings.tz).strftime("%Y-%m-%d %H:%M"))
    console.print(table, highlight=False)


@fission_app.command("submit-shot")
def fission_submit_shot(campaign: int, member: Annotated[str, typer.Option("--member")],
                        file: Annotated[Path, typer.Option("--file", help="PNG or JPEG")],
                        as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """A screenshot a member sent you privately, into the review queue for them."""
    with session(as_user, write=True) as (rt, conn, actor):
        if not file.is_file():
            raise InvalidInput("--file {path}: no such file", path=str(file))
        out = fission_shots.do_submit(conn, actor=actor, campaign_id=campaign,
                                      member_id=member_id_by_number(conn, member),
                                      data=file.read_bytes(),
                                      folder=rt.settings.pictures_dir,
                                      now=rt.now())
    done(as_json, out, say("screenshot {id} is waiting for review", id=out["id"]))


@fission_app.command("review")
def fission_review(shot: int, approve: Annotated[bool, typer.Option(
        "--approve/--decline", help="Approve, or decline (with --reason)")],
                   reason: Annotated[str, typer.Option(
                       help="Why not: the member reads it")] = "",
                   as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Decide a screenshot: approving reserves the reward (while stock lasts)."""
    with session(as_user, write=True) as (rt, conn, actor):
        out = fission_shots.do_review(conn, actor=actor, shot_id=shot, approve=approve,
                                      reason=reason, capabilities=rt.capabilities,
                                      public_url=rt.settings.public_url, now=rt.now())
    done(as_json, out, say("screenshot {id}: {status}", id=shot,
                           status=say(f"fission.shot_status.{out['status']}")))


@fission_app.command("rehearse")
def fission_rehearse(
    campaign: int,
    seeds: Annotated[int, typer.Option(help="Members taking part at the start")] = 30,
    share: Annotated[float, typer.Option(help="Share of participants who share (0–1)")] = 0.5,
    friends: Annotated[float, typer.Option(help="Friends a sharer brings, on average")] = 2.0,
    leave: Annotated[float, typer.Option(
        help="Share of friends who leave within the window (0–1)")] = 0.1,
    days: Annotated[int, typer.Option(help="Days rehearsed, ending now")] = 7,
    seed: Annotated[int, typer.Option(help="Same seed, same rehearsal")] = 7,
    max_joins: Annotated[int, typer.Option("--max-joins")] = 20_000,
    as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Rehearse the campaign's plan on the sandbox with simulated people (a new campaign
    over new sandbox groups; the real one is untouched)."""
    plan = fission_rehearsal.Rehearsal(seeds=seeds, share=share, friends=friends, leave=leave,
                                       days=days, seed=seed, max_joins=max_joins)
    with runtime() as rt:
        actor = acting(rt, as_user)
        out = fission_rehearsal.do_rehearse(
            rt.uow, actor=actor, campaign_id=campaign, plan=plan, adapter_for=rt.adapter,
            config=rt.ingest_config, capabilities=rt.capabilities, now=rt.now())
    r = out["report"]
    done(as_json, out, say("rehearsal {id}: {participants} took part, {valid} valid invites, "
                           "{completed} completed, K {k}", id=out["campaign_id"],
                           participants=r["participants"], valid=r["valid_invites"],
                           completed=r["completed"], k=r["k_factor"]["k"]))

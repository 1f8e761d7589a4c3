"""Draws (F15): lotteries with prize stock and red-packet splits among eligible members.

Reproducible: the eligible list (member ids, sorted) and the seed are stored; re-running
:func:`pick` with them gives the same winners, which :func:`verify_draw` checks. Eligibility
is "in the group now" and, optionally, a segment expression such as ``messages[1h] >= 1``
(spoke in the last hour) or ``events.checkin[1d] >= 1`` (checked in within a day).
"""

from __future__ import annotations

import hashlib
import random
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from qunyun.adapters.storage.tables import draws, groups, members, memberships
from qunyun.clock import Clock, utcnow
from qunyun.domain.staff import Permission
from qunyun.services import audit, segments
from qunyun.services.errors import InvalidInput, NotFound
from qunyun.services.users import Actor

KINDS = ("lottery", "red_packet")
MAX_WINNERS = 1000


@dataclass(frozen=True, slots=True)
class Prize:
    name: str
    stock: int


def parse_prizes(text: str) -> list[Prize]:
    """``一等奖:1,二等奖:3`` → prizes with stock."""
    prizes = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, stock = part.rpartition(":")
        if not sep or not name.strip():
            raise InvalidInput("prizes: {part!r} is not NAME:STOCK", part=part)
        try:
            n = int(stock)
        except ValueError:
            raise InvalidInput("prizes: stock of {name!r} is not a whole number",
                               name=name) from None
        if n < 1:
            raise InvalidInput("prizes: stock of {name!r} must be at least 1", name=name)
        prizes.append(Prize(name.strip(), n))
    if not prizes:
        raise InvalidInput("prizes: give at least one NAME:STOCK")
    return prizes


def pick(eligible: list[int], seed: str, *, kind: str, prizes: list[Prize],
         amount_cents: int = 0, count: int = 0) -> list[dict[str, Any]]:
    """Pure and deterministic: the same eligible list and seed give the same winners."""
    rng = random.Random(hashlib.sha256(seed.encode()).hexdigest())
    pool = sorted(eligible)
    if kind == "lottery":
        slots = [p.name for p in prizes for _ in range(p.stock)]
        chosen = rng.sample(pool, min(len(slots), len(pool)))
        return [{"member_id": m, "prize": slots[i]} for i, m in enumerate(chosen)]
    # red packet: "double mean" split, at least one cent each, in drawing order
    winners = rng.sample(pool, min(count, len(pool)))
    left, out = amount_cents, []
    for i, member in enumerate(winners):
        remaining = len(winners) - i
        if remaining == 1:
            cents = left
        else:
            cents = rng.randint(1, max(1, 2 * left // remaining - 1))
            cents = min(cents, left - (remaining - 1))
        left -= cents
        out.append({"member_id": member, "amount": cents / 100})
    return out


def eligible_members(conn: Connection, *, actor: Actor, group_id: int, expression: str,
                     clock: Clock) -> list[int]:
    in_group = select(memberships.c.member_id).where(
        memberships.c.group_id == group_id, memberships.c.left_at.is_(None))
    stmt = select(members.c.id).where(members.c.id.in_(in_group),
                                      members.c.merged_into_id.is_(None))
    if expression.strip():
        node = segments.parse(expression)
        stmt = stmt.where(members.c.id.in_(segments.member_ids(node, clock)))
    return sorted(int(m) for m in conn.execute(stmt).scalars())


def do_draw(conn: Connection, *, actor: Actor, group_id: int, title: str, kind: str,
            clock: Clock, expression: str = "", prizes: str = "", amount: float = 0.0,
            count: int = 0, seed: str | None = None) -> dict[str, Any]:
    actor.require(Permission.OPERATE)
    if kind not in KINDS:
        raise InvalidInput("kind: one of {kinds}", kinds=', '.join(KINDS))
    if not title.strip() or len(title) > 200:
        raise InvalidInput("title: 1 to 200 characters")
    if conn.execute(select(groups.c.id).where(groups.c.id == group_id)).first() is None:
        raise NotFound("group {group_id} not found", group_id=group_id)
    prize_list: list[Prize] = []
    cents = 0
    if kind == "lottery":
        prize_list = parse_prizes(prizes)
        if sum(p.stock for p in prize_list) > MAX_WINNERS:
            raise InvalidInput("prizes: at most {limit} in all", limit=MAX_WINNERS)
    else:
        cents = round(amount * 100)
        if not 1 <= count <= MAX_WINNERS:
            raise InvalidInput("count: between 1 and {limit}", limit=MAX_WINNERS)
        if cents < count:
            raise InvalidInput("amount: at least 0.01 per winner")
    eligible = eligible_members(conn, actor=actor, group_id=group_id, expression=expression,
                                clock=clock)
    if not eligible:
        raise InvalidInput("nobody is eligible for this draw")
    seed = seed or secrets.token_hex(16)
    winners = pick(eligible, seed, kind=kind, prizes=prize_list, amount_cents=cents,
                   count=count)
    draw_id = int(conn.execute(draws.insert().values(
        group_id=group_id, title=title.strip(), kind=kind, eligibility=expression.strip(),
        seed=seed, eligible=eligible,
        prizes=[{"name": p.name, "stock": p.stock} for p in prize_list] if prize_list
        else [{"amount": cents / 100, "count": count}],
        winners=winners, created_by=actor.label, created_at=utcnow(),
    ).returning(draws.c.id)).scalar_one())
    audit.record(conn, actor=actor.label, action="draw.run", object_type="draw",
                 object_id=draw_id, detail={"group_id": group_id, "kind": kind,
                                            "eligible": len(eligible), "seed": seed})
    return get_draw(conn, actor=actor, draw_id=draw_id)


def get_draw(conn: Connection, *, actor: Actor, draw_id: int) -> dict[str, Any]:
    actor.require(Permission.VIEW)
    row = conn.execute(select(draws, groups.c.name.label("group_name"))
                       .outerjoin(groups, groups.c.id == draws.c.group_id)
                       .where(draws.c.id == draw_id)).mappings().first()
    if row is None:
        raise NotFound("draw {draw_id} not found", draw_id=draw_id)
    data = dict(row)
    ids = [w["member_id"] for w in data["winners"]]
    names = {r.id: (r.number, r.display_name) for r in conn.execute(
        select(members.c.id, members.c.number, members.c.display_name)
        .where(members.c.id.in_(ids)))} if ids else {}
    data["winners"] = [{**w, "number": names.get(w["member_id"], (None, ""))[0],
                        "name": names.get(w["member_id"], (None, ""))[1]}
                       for w in data["winners"]]
    return data


def verify_draw(conn: Connection, *, actor: Actor, draw_id: int) -> dict[str, Any]:
    """Re-run the draw from its stored seed and eligible list; True when winners agree."""
    draw = get_draw(conn, actor=actor, draw_id=draw_id)
    if draw["kind"] == "lottery":
        again = pick(draw["eligible"], draw["seed"], kind="lottery",
                     prizes=[Prize(p["name"], p["stock"]) for p in draw["prizes"]])
    else:
        spec = draw["prizes"][0]
        again = pick(draw["eligible"], draw["seed"], kind="red_packet", prizes=[],
                     amount_cents=round(spec["amount"] * 100), count=spec["count"])
    stored = [{k: v for k, v in w.items() if k in {"member_id", "prize", "amount"}}
              for w in draw["winners"]]
    return {"draw_id": draw_id, "verified": again == stored, "seed": draw["seed"],
            "eligible": len(draw["eligible"]), "winners": again}


def list_draws(conn: Connection, *, actor: Actor, group_id: int | None = None,
               limit: int = 50) -> list[dict[str, Any]]:
    actor.require(Permission.VIEW)
    stmt = (select(draws.c.id, draws.c.title, draws.c.kind, draws.c.created_at,
                   draws.c.created_by, draws.c.seed, groups.c.name.label("group_name"))
            .outerjoin(groups, groups.c.id == draws.c.group_id))
    if group_id is not None:
        stmt = stmt.where(draws.c.group_id == group_id)
    return [dict(r) for r in conn.execute(stmt.order_by(draws.c.id.desc()).limit(limit))
            .mappings()]

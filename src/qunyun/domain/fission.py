"""Fission campaigns (F20, F21), the pure parts: task stages, the texts the loop sends, and
the campaign's numbers (K-factor, completion) from counts.

Seeds 001/002: a participant shares their own code; each friend who joins through it and
stays ``valid_hours`` is a valid invite; reaching a stage's count reserves its reward while
stock lasts. The first inviter of a person is the only one credited.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qunyun.domain.content import fill_slots
from qunyun.i18n import InvalidValue

CODE_PREFIX = "fx"  # a participant's channel: fx<campaign>m<member number>
# the loop's messages, each replaceable per campaign (``texts``); {…} are filled in
TEXTS: dict[str, str] = {
    "welcome": ("@{name} 欢迎加入！本群正在进行「{campaign}」：邀请 {invites} 位好友入群即可得"
                "「{reward}」。这是你的专属邀请链接：{link}"),
    "progress": ("@{name} 你邀请的 {invitee} 已入群，已有效邀请 {count} 人，"
                 "再邀请 {left} 人可得「{reward}」"),
    "done": "@{name} 恭喜完成「{reward}」任务！已有效邀请 {count} 人，领奖链接已私信发给你",
    "taken_back": "@{name} {invitee} 退群了，这次邀请不计，当前有效邀请 {count} 人",
    "sold_out": "@{name} 已有效邀请 {count} 人，「{reward}」已经发完了，感谢参与",
    "claim": "{name}，你在「{campaign}」中获得了「{reward}」，请在这里填写收货信息：{link}",
    "completers": "{name}，恭喜完成「{campaign}」！欢迎加入完成者专属群「{group}」：{link}",
    "shot_approved": "{name}，你的分享截图通过了审核，获得「{reward}」，领奖链接稍后私信发给你",
    "shot_declined": "{name}，你的分享截图没有通过审核：{reason}。可以重新上传：{share}",
    "shot_sold_out": "{name}，你的分享截图通过了审核，但「{reward}」已经发完了，感谢参与",
}
# after a welcome without {poster}, where no picture goes
POSTER_LINE = "\n你的专属海报：{poster}"
# after a welcome without {share}, in a campaign with a share stage
SHARE_LINE = "\n或者把海报分享到朋友圈，截图上传领「{share_reward}」：{share}"
# which {…} each text may use (checked when a team writes its own)
TEXT_FIELDS: dict[str, frozenset[str]] = {
    "welcome": frozenset({"name", "campaign", "invites", "reward", "link", "poster", "share",
                          "share_reward"}),
    "progress": frozenset({"name", "invitee", "count", "left", "reward"}),
    "done": frozenset({"name", "reward", "count"}),
    "taken_back": frozenset({"name", "invitee", "count"}),
    "sold_out": frozenset({"name", "reward", "count"}),
    "claim": frozenset({"name", "campaign", "reward", "link"}),
    "completers": frozenset({"name", "campaign", "group", "link"}),
    "shot_approved": frozenset({"name", "reward"}),
    "shot_declined": frozenset({"name", "reason", "share"}),
    "shot_sold_out": frozenset({"name", "reward"}),
}


class FissionError(InvalidValue):
    """A campaign's definition is wrong; the message names the part."""


INVITES, SHARE = "invites", "share"  # a stage's task: invite friends, or share and show it
SHARE_WORDS = ("share", "截图", "分享")


@dataclass(frozen=True, slots=True)
class Stage:
    invites: int  # 0 for a share stage
    reward: str
    stock: int
    cost_cents: int = 0  # what one reward costs the team (the report's cost per newcomer)
    kind: str = INVITES

    def to_dict(self) -> dict[str, int | str]:
        return {"invites": self.invites, "reward": self.reward, "stock": self.stock,
                "cost_cents": self.cost_cents, "kind": self.kind}


def parse_stage(text: str) -> Stage:
    """``INVITES:REWARD:STOCK[:COST]``, e.g. ``3:保温杯:100`` or ``3:保温杯:100:25.5`` (yuan);
    ``share:REWARD:STOCK`` (or 截图/分享) for sharing the poster, shown by a screenshot a
    person checks."""
    parts = text.split(":")
    if len(parts) not in (3, 4) or not parts[1].strip():
        raise FissionError("stage {text!r}: write INVITES:REWARD:STOCK[:COST], "
                           "e.g. 3:保温杯:100:25.5", text=text)
    share = parts[0].strip().lower() in SHARE_WORDS
    try:
        invites, stock = (0 if share else int(parts[0])), int(parts[2])
    except ValueError:
        raise FissionError("stage {text!r}: INVITES and STOCK are whole numbers",
                           text=text) from None
    cost = parse_cost(parts[3]) if len(parts) == 4 else 0
    return check_stage(Stage(invites, parts[1].strip()[:64], stock, cost,
                             SHARE if share else INVITES))


def parse_cost(text: str) -> int:
    """Yuan with at most two decimals (``25``, ``25.5``, ``0.99``) as cents."""
    whole, _, cents = text.strip().partition(".")
    if not whole.isdigit() or len(whole) > 7 or (cents and not (
            cents.isdigit() and len(cents) <= 2)):
        raise FissionError("stage cost {cost!r}: yuan, e.g. 25 or 25.5", cost=text[:20])
    return int(whole) * 100 + int(cents.ljust(2, "0") or 0)


def check_stage(stage: Stage) -> Stage:
    if stage.kind not in (INVITES, SHARE):
        raise FissionError("stage kind: invites or share")
    if stage.kind == SHARE and stage.invites:
        raise FissionError("a share stage counts no invites")
    if stage.kind == INVITES and not 1 <= stage.invites <= 10_000:
        raise FissionError("stage invites: between 1 and 10000")
    if not 0 <= stage.stock <= 10_000_000:
        raise FissionError("stage stock: between 0 and 10000000")
    return stage


def check_stages(stages: Sequence[Stage]) -> list[Stage]:
    if not stages:
        raise FissionError("stages: at least one (INVITES:REWARD:STOCK)")
    counts = [s.invites for s in stages if s.kind == INVITES]
    if counts != sorted(set(counts)):
        raise FissionError("stages: each needs more invites than the one before")
    if sum(s.kind == SHARE for s in stages) > 1:
        raise FissionError("stages: one share stage at most")
    return [check_stage(s) for s in stages]


def completing(plan: Sequence[Mapping[str, Any]]) -> frozenset[int]:
    """The positions whose reward means a participant completed the campaign: the first
    invite stage, and the share stage (either task done is done)."""
    first = next((int(s["position"]) for s in plan if s.get("kind", INVITES) == INVITES),
                 None)
    shared = {int(s["position"]) for s in plan if s.get("kind") == SHARE}
    return frozenset(shared | ({first} if first is not None else set()))


def share_stage(plan: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return next((s for s in plan if s.get("kind") == SHARE), None)


def participant_code(campaign_id: int, member_number: int) -> str:
    return f"{CODE_PREFIX}{campaign_id}m{member_number}"


def split_code(channel: str, prefix: str) -> tuple[int, int] | None:
    """(id, member number) of a personal code ``<prefix><id>m<number>`` — a fission
    participant's, a member's invitation — or None; numbers past 64 bits are no code."""
    if not channel.startswith(prefix):
        return None
    head, sep, number = channel[len(prefix):].partition("m")
    if not (sep and head.isdigit() and number.isdigit() and len(head) < 19
            and len(number) < 19):
        return None
    return int(head), int(number)


def code_parts(channel: str) -> tuple[int, int] | None:
    """(campaign id, member number) of a participant's code; None for any other channel."""
    return split_code(channel, CODE_PREFIX)


def next_stage(stages: Sequence[Mapping[str, int | str]], count: int
               ) -> Mapping[str, int | str] | None:
    """The first invite stage not yet reached at ``count`` valid invites."""
    return next((s for s in stages if s.get("kind", INVITES) == INVITES
                 and int(s["invites"]) > count), None)


def crossed(stages: Sequence[Mapping[str, int | str]], before: int, after: int
            ) -> list[Mapping[str, int | str]]:
    """The invite stages reached on the way from ``before`` to ``after`` valid invites, in
    order (several invites settled together may pass more than one)."""
    return [s for s in stages if s.get("kind", INVITES) == INVITES
            and before < int(s["invites"]) <= after]


def in_brief(names: Sequence[str], limit: int = 5) -> str:
    """Names for one message: ``甲、乙、丙``, or the first ``limit`` and ``等 N 人``."""
    shown = "、".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} 等 {len(names)} 人"


def k_factor(*, participants: int, invites_sent: int, valid_invites: int) -> dict[str, float]:
    """Invites per participant × conversion of an invite into a valid member, and simply
    valid newcomers ÷ participants (the two agree when every invite is a join)."""
    if participants <= 0:
        return {"invites_per_participant": 0.0, "conversion": 0.0, "k": 0.0,
                "valid_per_participant": 0.0}
    per = invites_sent / participants
    conversion = valid_invites / invites_sent if invites_sent else 0.0
    return {"invites_per_participant": round(per, 4), "conversion": round(conversion, 4),
            "k": round(per * conversion, 4),
            "valid_per_participant": round(valid_invites / participants, 4)}


def check_texts(texts: Mapping[str, str]) -> dict[str, str]:
    """A team's own messages: known kinds, at most 1,000 characters, only the {…} that kind
    fills (a typo would reach members as written). Empty, or the default's words, means the
    default."""
    out: dict[str, str] = {}
    for kind, text in texts.items():
        if kind not in TEXTS:
            raise FissionError("texts: no message called {kind!r}", kind=str(kind)[:30])
        text = str(text).strip()
        if len(text) > 1000:
            raise FissionError("texts {kind}: at most 1000 characters", kind=kind)
        used = set(re.findall(r"\{([^{}]*)\}", text))
        if unknown := sorted(used - TEXT_FIELDS[kind]):
            raise FissionError("texts {kind}: {field} is not filled here; use {fields}",
                               kind=kind, field="{" + unknown[0][:20] + "}",
                               fields=" ".join("{" + f + "}" for f in sorted(TEXT_FIELDS[kind])))
        if text and text != TEXTS[kind]:  # the default's own words keep it the default
            out[kind] = text
    return out


def text_of(texts: Mapping[str, str] | None, kind: str) -> str:
    return (texts or {}).get(kind) or TEXTS[kind]


def fill(template: str, **values: object) -> str:
    """The loop's message with its slots filled (one pass: see ``content.fill_slots``)."""
    return fill_slots(template, values)

"""Fission campaigns (F20, F21), the pure parts: task stages, the texts the loop sends, and
the campaign's numbers (K-factor, completion) from counts.

Seeds 001/002: a participant shares their own code; each friend who joins through it and
stays ``valid_hours`` is a valid invite; reaching a stage's count reserves its reward while
stock lasts. The first inviter of a person is the only one credited.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from qunyun.i18n import InvalidValue

CODE_PREFIX = "fx"  # a participant's channel: fx<campaign>m<member number>
PROGRESS = ("@{name} 你邀请的 {invitee} 已入群，已有效邀请 {count} 人，"
            "再邀请 {left} 人可得「{reward}」")
DONE = "@{name} 恭喜完成「{reward}」任务！已有效邀请 {count} 人，工作人员会私聊你领取奖励"
TAKEN_BACK = "@{name} {invitee} 退群了，这次邀请不计，当前有效邀请 {count} 人"
SOLD_OUT = "@{name} 已有效邀请 {count} 人，「{reward}」已经发完了，感谢参与"


class FissionError(InvalidValue):
    """A campaign's definition is wrong; the message names the part."""


@dataclass(frozen=True, slots=True)
class Stage:
    invites: int
    reward: str
    stock: int

    def to_dict(self) -> dict[str, int | str]:
        return {"invites": self.invites, "reward": self.reward, "stock": self.stock}


def parse_stage(text: str) -> Stage:
    """``INVITES:REWARD:STOCK``, e.g. ``3:保温杯:100``."""
    parts = text.split(":")
    if len(parts) != 3 or not parts[1].strip():
        raise FissionError("stage {text!r}: write INVITES:REWARD:STOCK, e.g. 3:保温杯:100",
                           text=text)
    try:
        invites, stock = int(parts[0]), int(parts[2])
    except ValueError:
        raise FissionError("stage {text!r}: INVITES and STOCK are whole numbers",
                           text=text) from None
    return check_stage(Stage(invites, parts[1].strip()[:64], stock))


def check_stage(stage: Stage) -> Stage:
    if not 1 <= stage.invites <= 10_000:
        raise FissionError("stage invites: between 1 and 10000")
    if not 0 <= stage.stock <= 10_000_000:
        raise FissionError("stage stock: between 0 and 10000000")
    return stage


def check_stages(stages: Sequence[Stage]) -> list[Stage]:
    if not stages:
        raise FissionError("stages: at least one (INVITES:REWARD:STOCK)")
    counts = [s.invites for s in stages]
    if counts != sorted(set(counts)):
        raise FissionError("stages: each needs more invites than the one before")
    return [check_stage(s) for s in stages]


def participant_code(campaign_id: int, member_number: int) -> str:
    return f"{CODE_PREFIX}{campaign_id}m{member_number}"


def code_parts(channel: str) -> tuple[int, int] | None:
    """(campaign id, member number) of a participant's code; None for any other channel."""
    if not channel.startswith(CODE_PREFIX):
        return None
    campaign, sep, number = channel[len(CODE_PREFIX):].partition("m")
    if not sep or not campaign.isdigit() or not number.isdigit():
        return None
    return int(campaign), int(number)


def next_stage(stages: Sequence[Mapping[str, int | str]], count: int
               ) -> Mapping[str, int | str] | None:
    """The first stage not yet reached at ``count`` valid invites."""
    return next((s for s in stages if int(s["invites"]) > count), None)


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


def fill(template: str, **values: object) -> str:
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", str(value))
    return out

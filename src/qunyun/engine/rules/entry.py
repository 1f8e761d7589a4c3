"""The entry gate (F9): answering requests to join a group whose admins approve newcomers.

Runs before everything else that could act on a person (priority -110): a request is not a
member yet, so nothing greets, moderates or counts them. A blacklisted applicant, or one
with a contact in their name (moderation's name check), is turned down without a word.
Then the group's ``entry`` settings decide: ``open`` lets everyone in; ``activity`` lets in
those enrolled (with a deposit, when asked) and tells the rest why not; ``questions`` asks
privately and waits (a person reads the answers, or an answer lets them in); ``review``
leaves the request to a person; ``share`` sends an upload link for the screenshot of a
share and a person checks it; ``invitation`` lets in whoever came through a current
member's personal code and turns the rest down. Where the platform holds no request
(WeCom), letting someone in sends them the group's join code (``AnswerJoinRequest.invite``,
the outbox's substitute). Every decision is recorded on the request
(``SettleJoinRequest``) in the same transaction as the answer is queued.
"""

from __future__ import annotations

from qunyun.domain.actions import Action, AnswerJoinRequest, SendPrivate, SettleJoinRequest
from qunyun.domain.automation import EntrySettings
from qunyun.domain.content import fill_slots
from qunyun.domain.events import DomainEvent, JoinRequested, PrivateMessageReceived
from qunyun.engine.rule import EntryFacts, Outcome, Rule, RuleContext
from qunyun.engine.rules.moderation import name_verdict
from qunyun.engine.triggers import on

# the reasons an applicant or a reviewer reads (the decline text's {reason})
NOT_ENROLLED = "你还没有报名本期活动"
NO_DEPOSIT = "你还没有交押金"
NO_ACTIVITY = "群的入群条件未设置活动，请工作人员审核"
BLACKLISTED = "已拉黑"
ANSWERED = "已回答入群问题"
NOT_INVITED = "本群只接受群成员邀请，请找群里的朋友要邀请链接"
INVITED = "由群成员 {name} 邀请"
NO_UPLOAD_LINK = "请把截图私聊发给群管理员"


def decline_message(settings: EntrySettings, reason: str) -> str:
    return fill_slots(settings.decline_text, {"reason": reason})


def invite_message(settings: EntrySettings, join_link: str) -> str:
    """What lets an applicant in where the platform holds no request; empty without a
    join code (then a person lets them in)."""
    return fill_slots(settings.invite_text, {"link": join_link}) if join_link else ""


def share_message(settings: EntrySettings, upload_link: str) -> str:
    return fill_slots(settings.share_text, {"link": upload_link or NO_UPLOAD_LINK})


def approve(entry: EntryFacts, member_id: int, reason: str, settings: EntrySettings
            ) -> list[Action]:
    return [AnswerJoinRequest(group_id=entry.group_id, member_id=member_id, approve=True,
                              reason=reason, invite=invite_message(settings, entry.join_link)),
            SettleJoinRequest(group_id=entry.group_id, member_id=member_id,
                              status="approved", reason=reason)]


def _decline(entry: EntryFacts, member_id: int, reason: str, message: str = ""
             ) -> list[Action]:
    told: list[Action] = ([SendPrivate(group_id=entry.group_id, member_id=member_id,
                                       text=message)] if message else [])
    return [*told,
            AnswerJoinRequest(group_id=entry.group_id, member_id=member_id, approve=False,
                              reason=reason),
            SettleJoinRequest(group_id=entry.group_id, member_id=member_id,
                              status="declined", reason=reason)]


class EntryGateRule(Rule):
    name = "entry_gate"
    priority = -110
    trigger = on(JoinRequested, PrivateMessageReceived)

    def matches(self, event: DomainEvent, ctx: RuleContext) -> object | None:
        entry = ctx.entry
        if entry is None or ctx.member is None or ctx.automation is None:
            return None
        if isinstance(event, PrivateMessageReceived):
            # an answer lets them in only where the group says so; else a person reads it
            settings = ctx.automation.settings(entry.group_id).entry
            ok = (entry.status == "answered" and settings.gate == "questions"
                  and settings.approve_answered)
            return entry if ok else None
        if entry.repeat and entry.status in ("asked", "answered"):
            return None  # asked again while the question waits: not asked twice
        return entry if isinstance(event, JoinRequested) else None

    def run(self, event: DomainEvent, ctx: RuleContext, match: object) -> Outcome:
        assert isinstance(match, EntryFacts) and ctx.member is not None
        assert ctx.automation is not None
        entry, member = match, ctx.member
        settings = ctx.automation.settings(entry.group_id).entry
        if isinstance(event, PrivateMessageReceived):
            return Outcome(approve(entry, member.id, ANSWERED, settings), stop=True)
        if member.blacklisted:  # not told why: a spammer learns nothing
            return Outcome(_decline(entry, member.id,
                                    member.blacklist_reason or BLACKLISTED), stop=True)
        # an ad in the name (moderation's name check): turned down without a word when it
        # carries a contact, else left to a person whatever the gate
        assert isinstance(event, JoinRequested)
        named = name_verdict(event.member.name,
                             ctx.automation.settings(entry.group_id).moderation,
                             ctx.automation.classifier)
        if named is not None:
            reason = "；".join(named.reasons[:3])
            return Outcome(_decline(entry, member.id, reason) if named.verdict == "block"
                           else [SettleJoinRequest(group_id=entry.group_id, member_id=member.id,
                                                   status="pending", reason=reason)],
                           stop=True)
        actions: list[Action]
        if settings.gate == "open":
            actions = approve(entry, member.id, "", settings)
        elif settings.gate == "activity":
            if settings.activity_id is None:
                actions = [SettleJoinRequest(group_id=entry.group_id, member_id=member.id,
                                             status="pending", reason=NO_ACTIVITY)]
            elif not entry.enrolled:
                actions = _decline(entry, member.id, NOT_ENROLLED,
                                   decline_message(settings, NOT_ENROLLED))
            elif settings.need_deposit and entry.deposit_fen <= 0:
                actions = _decline(entry, member.id, NO_DEPOSIT,
                                   decline_message(settings, NO_DEPOSIT))
            else:
                actions = approve(entry, member.id, "已报名活动", settings)
        elif settings.gate == "invitation":
            actions = (approve(entry, member.id, INVITED.format(name=entry.invited_by),
                               settings) if entry.invited_by
                       else _decline(entry, member.id, NOT_INVITED,
                                     decline_message(settings, NOT_INVITED)))
        elif settings.gate == "share":
            actions = [SendPrivate(group_id=entry.group_id, member_id=member.id,
                                   text=share_message(settings, entry.upload_link)),
                       SettleJoinRequest(group_id=entry.group_id, member_id=member.id,
                                         status="asked")]
        elif settings.gate == "questions":
            actions = [SendPrivate(group_id=entry.group_id, member_id=member.id,
                                   text=settings.question_text),
                       SettleJoinRequest(group_id=entry.group_id, member_id=member.id,
                                         status="asked")]
        else:
            actions = [SettleJoinRequest(group_id=entry.group_id, member_id=member.id,
                                         status="pending")]
        return Outcome(actions, stop=True)

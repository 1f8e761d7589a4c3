"""Every recorded WeCom callback fixture → the domain events and follow-ups it must give."""

from __future__ import annotations

from pathlib import Path

import pytest

from qunyun.adapters.platforms.base import ParseResult
from qunyun.adapters.platforms.wecom import parse as wp
from qunyun.domain.events import (
    ContactChange,
    ContactChanged,
    GroupUpdated,
    JoinScene,
    LeaveScene,
    MemberJoined,
    MemberLeft,
)

FIXTURES = Path(wp.__file__).parent / "fixtures"
CHAT = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"


def load(name: str) -> ParseResult:
    return wp.parse({"xml": (FIXTURES / f"{name}.xml").read_text(encoding="utf-8")})


def summary(result: ParseResult) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for e in result.events:
        match e:
            case MemberJoined():
                out.append(("joined", e.member.external_id, e.scene.value, e.member.kind))
            case MemberLeft():
                out.append(("left", e.member.external_id, e.scene.value))
            case GroupUpdated():
                out.append(("group", e.chat.external_id, "dismissed" if e.dismissed else ""))
            case ContactChanged():
                out.append(("contact", e.member.external_id, e.staff_id, e.change.value,
                            e.channel, *sorted(f"{k}={v}" for k, v in e.detail.items())))
    return out


EXPECTED: dict[str, list[tuple[str, ...]]] = {
    "change_external_chat__create": [("group", CHAT, "")],
    "change_external_chat__dismiss": [("group", CHAT, "dismissed")],
    "change_external_chat__add_member_items": [
        ("joined", "wmOgQhDgAAAAAAAAAAAAAA", "invite", "external_user"),
        ("joined", "wmOgQhDgBBBBBBBBBBBBBB", "invite", "external_user")],
    "change_external_chat__add_member_single_item": [
        ("joined", "wmOgQhDgCCCCCCCCCCCCCC", "qr", "external_user")],
    "change_external_chat__add_member_flat": [
        ("joined", "wmOgQhDgDDDDDDDDDDDDDD", "invite", "external_user"),
        ("joined", "wmOgQhDgEEEEEEEEEEEEEE", "invite", "external_user")],
    "change_external_chat__add_member_no_list": [],
    "change_external_chat__del_member_left": [("left", "wmOgQhDgAAAAAAAAAAAAAA", "left")],
    "change_external_chat__del_member_removed": [
        ("left", "wmOgQhDgBBBBBBBBBBBBBB", "removed")],
    "change_external_chat__change_owner": [],
    "change_external_chat__change_name": [],
    "change_external_chat__change_notice": [],
    "change_external_contact__add_external_contact": [
        ("contact", "wmOgQhDgFFFFFFFFFFFFFF", "zhangsan", "added", "poster-a",
         "welcome_code=WELCOMECODE")],
    "change_external_contact__add_half_external_contact": [
        ("contact", "wmOgQhDgFFFFFFFFFFFFFF", "zhangsan", "half_added", "poster-a",
         "welcome_code=WELCOMECODE2")],
    "change_external_contact__edit_external_contact": [
        ("contact", "wmOgQhDgFFFFFFFFFFFFFF", "zhangsan", "edited", "")],
    "change_external_contact__del_external_contact": [
        ("contact", "wmOgQhDgFFFFFFFFFFFFFF", "zhangsan", "deleted", "")],
    "change_external_contact__del_external_contact_transfer": [
        ("contact", "wmOgQhDgFFFFFFFFFFFFFF", "zhangsan", "deleted", "",
         "source=DELETE_BY_TRANSFER")],
    "change_external_contact__del_follow_user": [
        ("contact", "wmOgQhDgFFFFFFFFFFFFFF", "zhangsan", "lost", "")],
    "change_external_contact__transfer_fail": [
        ("contact", "wmOgQhDgFFFFFFFFFFFFFF", "zhangsan", "transfer_failed", "",
         "reason=customer_refused")],
    "change_external_contact__msg_audit_approved": [
        ("contact", "wmOgQhDgFFFFFFFFFFFFFF", "zhangsan", "archive_approved", "",
         "welcome_code=WELCOMECODE3")],
    "change_external_tag__create": [],
    "change_external_tag__update": [],
    "change_external_tag__delete": [],
    "change_external_tag__shuffle": [],
    "msgaudit_notify__pull": [],
}


def test_every_fixture_has_an_expectation() -> None:
    assert {p.stem for p in FIXTURES.glob("*.xml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name: str) -> None:
    result = load(name)
    assert summary(result) == EXPECTED[name]
    kinds = [f["kind"] for f in result.follow_ups]
    if name.startswith("change_external_chat__") and not name.endswith("dismiss"):
        assert kinds == ["reconcile_group"] and result.follow_ups[0]["chat"] == CHAT
    elif name.startswith("change_external_tag__"):
        assert kinds == ["sync_tags"]
    else:
        assert kinds == []
    if name == "msgaudit_notify__pull":
        assert dict(result.skipped) == {"msgaudit_notify": 1}
    else:
        assert not result.skipped


def test_versions_and_ids() -> None:
    result = load("change_external_chat__add_member_items")
    assert result.follow_ups[0]["last_version"] == "v0"
    assert result.follow_ups[0]["current_version"] == "v1"
    ids = {e.external_event_id for e in result.events}
    assert len(ids) == 2 and all(i.startswith("cb:") for i in ids)
    # the same XML gives the same ids (a WeCom retry is recognised), other XML other ids
    assert {e.external_event_id for e in load("change_external_chat__add_member_items").events} \
        == ids
    assert ContactChange("lost") is ContactChange.LOST
    assert JoinScene.QR and LeaveScene.REMOVED


@pytest.mark.parametrize(("xml", "message"), [
    ("<xml><Event>change_external_chat</Event><ChangeType>create</ChangeType>"
     "<CreateTime>1</CreateTime></xml>", "ChatId"),
    ("<xml><Event>change_external_chat</Event><ChangeType>update</ChangeType>"
     "<UpdateDetail>add_member</UpdateDetail><ChatId>c</ChatId><CreateTime>1</CreateTime>"
     "<JoinScene>9</JoinScene></xml>", "JoinScene"),
    ("<xml><Event>change_external_contact</Event><ChangeType>del_follow_user</ChangeType>"
     "<CreateTime>x</CreateTime><UserID>u</UserID><ExternalUserID>wm1</ExternalUserID></xml>",
     "CreateTime"),
    ("<xml><Event>", "XML"),
])
def test_bad_callbacks_name_the_field(xml: str, message: str) -> None:
    with pytest.raises(wp.WecomParseError, match=message):
        wp.parse({"xml": xml})


def test_unknown_update_detail_is_counted() -> None:
    result = wp.parse({"xml": "<xml><Event>change_external_chat</Event><ChangeType>update"
                              "</ChangeType><UpdateDetail>change_avatar</UpdateDetail>"
                              "<ChatId>c</ChatId><CreateTime>1</CreateTime></xml>"})
    assert dict(result.skipped) == {"change_external_chat:update:change_avatar": 1}

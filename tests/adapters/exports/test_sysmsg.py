"""System notices in Chinese and English, plain text and XML; evaluated on real captures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from qunyun.adapters.platforms.exports.sysmsg import YOU, _clean, parse_notice

REAL = Path(__file__).parents[3] / ".." / "shared" / "data" / "wechat_system_messages"


def names(people: tuple) -> list[str]:  # type: ignore[type-arg]
    return [p.name for p in people]


@pytest.mark.parametrize(("text", "kind", "actor", "subjects"), [
    ('"李卓桓"邀请"Huan LI++"加入了群聊', "invite", "李卓桓", ["Huan LI++"]),
    ('"群主"邀请"李四、王五"加入了群聊', "invite", "群主", ["李四", "王五"]),
    ('"李卓桓"邀请你和"Huan LI++"加入了群聊', "invite", "李卓桓", [YOU, "Huan LI++"]),
    ('"李佳芮"邀请你加入了群聊，群聊参与人还有：小桔、桔小秘', "invite", "李佳芮", [YOU]),
    ('你邀请"小明"加入了群聊  撤销', "invite", YOU, ["小明"]),
    # a QR code admits one person: a nickname with 、 in it stays whole
    ('" 卓桓、Zhuohuan"通过扫描"李佳芮"分享的二维码加入群聊', "qr_join", "李佳芮",
     ["卓桓、Zhuohuan"]),
    ('"阿强"通过扫描你分享的二维码加入群聊', "qr_join", YOU, ["阿强"]),
    # emoji markup becomes the emoji, as in the nickname of the person's messages
    ('"XXX"邀请"<span class="emoji emoji1f338"></span>YYY"加入了群聊', "invite", "XXX",
     ["🌸YYY"]),
    ('你将"Huan LI++"移出了群聊', "remove", YOU, ["Huan LI++"]),
    ('你被"李卓桓"移出群聊', "remove", "李卓桓", [YOU]),
    ('"张三" 撤回了一条消息', "recall", "张三", []),
    ('"李四" 拍了拍 "张三" 的脑袋', "pat", "李四", ["张三"]),
    ('"Bob" invited "Ann", "Cat" to the group chat', "invite", "Bob", ["Ann", "Cat"]),
    ('Tom invited you to a group chat with Ann, Cat', "invite", "Tom", [YOU]),
    ('"X" joined the group chat via the QR Code shared by "Y".', "qr_join", "Y", ["X"]),
    ('You removed "Z" from the group chat', "remove", YOU, ["Z"]),
    ('You were removed from the group chat by "Boss"', "remove", "Boss", [YOU]),
])
def test_text_notices(text: str, kind: str, actor: str, subjects: list[str]) -> None:
    notice = parse_notice(text)
    assert notice is not None, text
    assert notice.kind == kind and notice.actor is not None and notice.actor.name == actor
    assert names(notice.subjects) == subjects


def test_renames_in_both_languages() -> None:
    for text, actor in [('"李卓桓"修改群名为“新群名”', "李卓桓"), ("你修改群名为“新群名”", YOU),
                        ('"Ann" changed the group name to "新群名"', "Ann"),
                        ('You changed the group name to "新群名"', YOU)]:
        notice = parse_notice(text)
        assert notice is not None and notice.kind == "rename", text
        assert notice.new_name == "新群名" and notice.actor and notice.actor.name == actor


def test_xml_forms_carry_wxids() -> None:
    xml = ('<sysmsg type="delchatroommember"><delchatroommember><plain><![CDATA["群主"邀请'
           '"钱七"加入了群聊]]></plain><link><scene>qrcode</scene><memberlist><username>'
           'wxid_qq7</username></memberlist></link></delchatroommember></sysmsg>')
    notice = parse_notice(xml)
    assert notice is not None and notice.kind == "qr_join" and notice.exact
    assert [(p.name, p.wxid) for p in notice.subjects] == [("wxid_qq7", "wxid_qq7")]
    template = ('<sysmsg type="sysmsgtemplate"><sysmsgtemplate><content_template '
                'type="tmpl_type_profile"><template><![CDATA["$username$"邀请"$names$"加入了群聊]]>'
                '</template><link_list><link name="username" type="link_profile"><memberlist>'
                '<member><username>wxid_a</username><nickname>阿、甲</nickname></member>'
                '</memberlist></link><link name="names" type="link_profile"><memberlist>'
                '<member><username>wxid_b</username><nickname>乙</nickname></member><member>'
                '<username>wxid_c</username><nickname>丙</nickname></member></memberlist>'
                '</link></link_list></content_template></sysmsgtemplate></sysmsg>')
    notice = parse_notice(template)
    assert notice is not None and notice.kind == "invite" and notice.exact
    assert notice.actor is not None and (notice.actor.name, notice.actor.wxid) == ("阿、甲",
                                                                                    "wxid_a")
    assert [p.wxid for p in notice.subjects] == ["wxid_b", "wxid_c"]
    revoke = ('<sysmsg type="revokemsg"><revokemsg><content>"张三" 撤回了一条消息</content>'
              '</revokemsg></sysmsg>')
    recalled = parse_notice(revoke)
    assert recalled is not None and recalled.kind == "recall"


def test_hostile_xml_is_not_expanded() -> None:
    bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 '
            '"&lol;&lol;&lol;">]><sysmsg type="revokemsg"><content>&lol2;</content></sysmsg>')
    assert parse_notice(bomb) is None or parse_notice(bomb).kind != "recall"  # type: ignore[union-attr]


def test_unknown_notice_is_none() -> None:
    assert parse_notice("群主开启了群聊邀请确认") is None


def test_real_captured_notices_parse_as_expected() -> None:
    """The wechaty captures in shared/data (skipped when that folder is absent)."""
    path = REAL / "real_system_messages_zh.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not present (evaluation data lives beside the project)")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    parsed = 0
    for record in records:
        notice = parse_notice(record["content"])
        assert notice is not None, record["content"]
        parsed += 1
        expected = record["expected_event_ts_literal"] or ""
        # we turn emoji markup into the emoji on purpose; compare the same way
        invitees, _sep, rest = expected.split("roomId")[0].partition("]")
        who = [_clean(w) for w in re.findall(r"'([^']*)'", invitees)]
        others = [_clean(w) for w in re.findall(r"'([^']*)'", rest)]
        if notice.kind == "qr_join" and len(who) > 1:
            # the captures split a QR joiner's nickname at 、; a QR code admits one person
            who = ["、".join(who)]
        wanted = who + others
        if "YOU" in expected:
            wanted = [YOU, *wanted]
        if wanted:
            got = [*names(notice.subjects)]
            if notice.actor is not None:
                got.append(notice.actor.name)
            assert sorted(wanted) == sorted(got), record["content"]
    assert parsed == len(records)


@pytest.mark.parametrize(("listed", "known", "people", "ambiguous"), [
    ("陈晨、黎丽、Amy、“阿杰”", {"黎丽、Amy"}, ["陈晨", "黎丽、Amy", "“阿杰”"], False),
    ("张一、张二", set(), ["张一", "张二"], False),  # two unknown names: two people
    ("黎丽、Amy", {"黎丽、Amy"}, ["黎丽、Amy"], False),
    ("黎丽、Amy", {"黎丽、Amy", "黎丽", "Amy"}, ["黎丽", "Amy"], True),  # reads both ways
    ("A、B、C", {"A、B", "B、C"}, ["A", "B、C"], True),
    ('Ann", "Cat', {"Ann"}, ["Ann", "Cat"], False),
])
def test_a_written_list_is_read_against_the_names_the_group_knows(
        listed: str, known: set[str], people: list[str], ambiguous: bool) -> None:
    from qunyun.adapters.platforms.exports.sysmsg import resolve_list

    assert resolve_list(listed, known) == (people, ambiguous)


def test_an_invite_list_keeps_what_was_written_for_the_translator() -> None:
    notice = parse_notice('"邓鹏"邀请"陈晨、黎丽、Amy"加入了群聊')
    assert notice is not None and not notice.exact and notice.listed == "陈晨、黎丽、Amy"
    removal = parse_notice('你将"黎丽、Amy"移出了群聊')
    assert removal is not None and removal.listed == "黎丽、Amy"
    qr = parse_notice('"黎丽、Amy"通过扫描"邓鹏"分享的二维码加入群聊')
    assert qr is not None and qr.exact and names(qr.subjects) == ["黎丽、Amy"]

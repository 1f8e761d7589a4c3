"""The WeCom connector end to end on SQLite and PostgreSQL, against the fake WeCom server over
HTTP: signed callbacks into the real endpoint, replays, forgeries, every recorded fixture,
out-of-order and lost callbacks, join-code rotation, and a broadcast that becomes an
owner-confirmed group send and then delivered results."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select

from qunyun.adapters.platforms.wecom.client import WecomApiError
from qunyun.adapters.platforms.wecom.crypto import WecomCrypto, signature
from qunyun.adapters.platforms.wecom.fake import FakeWecom, chat_update_xml
from qunyun.adapters.storage.tables import (
    groups,
    identities,
    join_codes,
    member_events,
    memberships,
    outbox,
    platform_tags,
    raw_inbox,
    staff_tasks,
    tags,
)
from qunyun.bootstrap import Runtime, make_wecom_adapter
from qunyun.clock import utcnow
from qunyun.services import (
    automation,
    broadcasts,
    confirmations,
    pushes,
    schedules,
    wecom,
    wecom_callbacks,
    wecom_sync,
)
from qunyun.services import join_codes as join_code_service
from qunyun.services.errors import AccessDenied, Conflict, InvalidInput, NotFound
from qunyun.services.users import SYSTEM
from qunyun.web.app import create_app
from tests.adapters.wecom.conftest import AES_KEY, CORP, SECRET, TOKEN
from tests.dbhelpers import snapshot

FIXTURES = Path(__file__).parents[3] / "src/qunyun/adapters/platforms/wecom/fixtures"


@pytest.fixture
def rt(runtime: Runtime, fake: FakeWecom, conn: Connection) -> Runtime:
    runtime.settings = runtime.settings.model_copy(update={"wecom_api_base": fake.base_url})
    runtime.adapters["wecom"] = make_wecom_adapter(runtime)
    wecom.do_add_corp(conn, actor=SYSTEM, box=runtime.box, corp_id=CORP, agent_id=1000002,
                      secret=SECRET, token=TOKEN, aes_key=AES_KEY, name="测试企业", now=utcnow())
    return runtime


@pytest.fixture
def web(rt: Runtime, fake: FakeWecom) -> Iterator[TestClient]:
    with TestClient(create_app(rt), follow_redirects=False) as c:
        fake.callback_url = "http://testserver/callbacks/wecom/{corp_id}"
        yield c


def process(rt: Runtime) -> wecom_callbacks.ProcessStats:
    return wecom_callbacks.process_callbacks(rt.uow, adapter=rt.adapters["wecom"],  # type: ignore[arg-type]
                                             config=rt.ingest_config)


def members_of(conn: Connection, chat_id: str) -> dict[str, tuple[str, str]]:
    """external id → (join scene, channel) of the group's current members."""
    rows = conn.execute(
        select(identities.c.external_id, memberships.c.join_scene, memberships.c.channel)
        .join(memberships, memberships.c.member_id == identities.c.member_id)
        .join(groups, groups.c.id == memberships.c.group_id)
        .where(groups.c.external_id == chat_id, memberships.c.left_at.is_(None),
               identities.c.platform == "wecom"))
    return {r[0]: (r[1], r[2]) for r in rows}


def count(conn: Connection, table) -> int:  # type: ignore[no-untyped-def]
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_sync_callbacks_replays_and_channels(conn: Connection, rt: Runtime, fake: FakeWecom,
                                             web: TestClient) -> None:
    fake.add_chat("wrG1", "训练营1群", "owner1", members=3)
    report = wecom_sync.sync_corp(
        rt.uow, adapter=rt.adapters["wecom"], corp_id=CORP)  # type: ignore[arg-type]
    assert (report.groups, report.members, report.changes.joined) == (1, 4, 4)
    assert len(members_of(conn, "wrG1")) == 4
    # a newcomer scans a code carrying state=poster-a; WeCom posts the callback
    xml = fake.join("wrG1", "wmNEW0001", scene=3, state="poster-a", notify=False)
    assert fake.send_callback(CORP, xml, http=web) == 200
    assert fake.send_callback(CORP, xml, http=web) == 200  # WeCom's retry: same XML
    assert count(conn, raw_inbox) == 1
    stats = process(rt)
    assert (stats.processed, stats.events, stats.reconciled) == (1, 1, 1)
    # the callback says "joined by QR"; groupchat/get adds the channel (state)
    assert members_of(conn, "wrG1")["wmNEW0001"] == ("qr", "poster-a")
    assert process(rt).processed == 0  # nothing left; a replay had one effect
    removed = fake.leave("wrG1", "wmNEW0001", removed=True, notify=False)
    assert fake.send_callback(CORP, removed, http=web) == 200
    process(rt)
    assert "wmNEW0001" not in members_of(conn, "wrG1")
    kinds = [k for (k,) in conn.execute(select(member_events.c.kind).order_by(
        member_events.c.id))]
    assert kinds.count("joined") == 5 and kinds.count("removed") == 1
    listed = wecom.list_corps(conn, actor=SYSTEM)[0]
    assert listed["status"]["groups"] == 1 and "last_callback_at" in listed["status"]
    assert "secret" not in listed and SECRET not in str(listed)


def test_a_broken_callback_fails_alone_in_its_batch(conn: Connection, rt: Runtime,
                                                     fake: FakeWecom, web: TestClient) -> None:
    fake.add_chat("wrB1", "打卡1群", "owner1")
    ts = int(utcnow().timestamp())
    for n in (1, 2):
        xml = chat_update_xml(CORP, "wrB1", "add_member", ts + n, [f"wmB{n}"],
                              last=str(n), cur=str(n + 1))
        assert fake.send_callback(CORP, xml, http=web) == 200
        if n == 1:  # a callback that decrypted but says nothing we can read, between the two
            wecom_callbacks.store_callbacks(
                conn, [wecom_callbacks.OpenedCallback(CORP, "<xml><Event>")], utcnow())
    stats = process(rt)
    assert (stats.processed, stats.failed) == (2, 1)
    rows = conn.execute(select(raw_inbox.c.status, raw_inbox.c.error,
                               raw_inbox.c.attempts).order_by(raw_inbox.c.id)).all()
    assert [r.status for r in rows] == ["processed", "failed", "processed"]
    assert rows[1].error and all(r.attempts == 1 for r in rows)
    joined = conn.execute(select(func.count()).select_from(member_events)
                          .where(member_events.c.kind == "joined")).scalar_one()
    assert joined >= 2 and {"wmB1", "wmB2"} <= set(members_of(conn, "wrB1"))
    assert process(rt).processed + process(rt).failed == 0  # a failed callback stays failed


def test_an_unreachable_api_is_tried_once_per_run(conn: Connection, rt: Runtime,
                                                   web: TestClient, fake: FakeWecom) -> None:
    ts = int(utcnow().timestamp())
    for n, chat in enumerate(("wrU1", "wrU2", "wrU3")):
        xml = chat_update_xml(CORP, chat, "add_member", ts, [f"wmU{n}"], last="a", cur="b")
        assert fake.send_callback(CORP, xml, http=web) == 200
    # WeCom out of reach (nothing listens on port 9): one failed read, not one per group
    rt.settings = rt.settings.model_copy(update={"wecom_api_base": "http://127.0.0.1:9/x"})
    rt.adapters["wecom"] = make_wecom_adapter(rt)
    stats = process(rt)
    assert (stats.processed, stats.reconciled, stats.deferred) == (3, 0, 2)
    assert len(stats.errors) == 1 and "network error" in stats.errors[0]
    assert wecom.list_corps(conn, actor=SYSTEM)[0]["status"]["last_error"] == stats.errors[0]


def test_callback_keys_are_kept_and_a_rekey_is_honoured_at_once(
        conn: Connection, rt: Runtime, web: TestClient) -> None:
    loads: list[str] = []
    now = [0.0]

    def load(corp_id: str) -> WecomCrypto:
        loads.append(corp_id)
        return wecom_callbacks.callback_crypto(conn, rt.box, corp_id)

    keys = wecom_callbacks.CallbackKeys(load, ttl=10, clock=lambda: now[0])
    ts = str(int(utcnow().timestamp()))

    def opened(crypto: WecomCrypto, n: int) -> str:
        xml = chat_update_xml(CORP, "wrK", "add_member", int(ts), [f"wmK{n}"])
        body, sig = crypto.encrypt_callback(xml, timestamp=ts, nonce=f"n{n}")
        return keys.open(corp_id=CORP, body=body.encode(), msg_signature=sig, timestamp=ts,
                         nonce=f"n{n}", now=utcnow(), max_age_seconds=300).xml

    old = WecomCrypto(TOKEN, AES_KEY, CORP)
    assert "wmK1" in opened(old, 1) and "wmK2" in opened(old, 2)
    assert loads == [CORP]  # the second callback used the kept keys
    now[0] = 11.0
    opened(old, 3)
    assert loads == [CORP, CORP]  # kept ten seconds, then read again
    new_key = "a" * 43
    wecom.do_add_corp(conn, actor=SYSTEM, box=rt.box, corp_id=CORP, agent_id=1000002,
                      secret=SECRET, token="NewToken", aes_key=new_key, now=utcnow())
    now[0] = 12.5  # (the keys are read again at most once a second)
    assert "wmK4" in opened(WecomCrypto("NewToken", new_key, CORP), 4)  # not 403 for 10 s
    assert loads == [CORP] * 3
    # a flood of forged callbacks is refused by the kept keys: no read per forgery
    for n in range(50):
        with pytest.raises(AccessDenied):
            opened(old, 5 + n)
    assert loads == [CORP] * 3
    for _ in range(50):  # unknown corps are remembered as unknown for the ttl
        with pytest.raises(NotFound):
            keys.open(corp_id="wwNOTCONNECTED", body=b"<xml/>", msg_signature="x",
                      timestamp=ts, nonce="n", now=utcnow(), max_age_seconds=300)
    assert loads == [CORP] * 3 + ["wwNOTCONNECTED"]
    with pytest.raises(InvalidInput, match="timestamp"):
        keys.open(corp_id=CORP, body=b"<xml/>", msg_signature="x", timestamp="9" * 400,
                  nonce="n", now=utcnow(), max_age_seconds=300)


def test_url_verification_and_refusals_store_nothing(conn: Connection, rt: Runtime,
                                                     fake: FakeWecom, web: TestClient) -> None:
    crypto = WecomCrypto(TOKEN, AES_KEY, CORP)
    ts, nonce = str(int(utcnow().timestamp())), "n1"
    echostr = crypto.encrypt("8213469120434")
    sig = signature(TOKEN, ts, nonce, echostr)
    ok = web.get(f"/callbacks/wecom/{CORP}", params={
        "msg_signature": sig, "timestamp": ts, "nonce": nonce, "echostr": echostr})
    assert ok.status_code == 200 and ok.content == b"8213469120434"  # bare, no newline
    before = snapshot(conn)
    xml = chat_update_xml(CORP, "wrX", "add_member", int(ts), ["wm1"], last="a", cur="b")
    body, good_sig = crypto.encrypt_callback(xml, timestamp=ts, nonce=nonce)
    url = f"/callbacks/wecom/{CORP}"
    forged = web.post(url, params={"msg_signature": "0" * 40, "timestamp": ts, "nonce": nonce},
                      content=body)
    assert forged.status_code == 403 and "msg_signature" in forged.text
    stale = str(int(ts) - 3600)
    _, stale_sig = crypto.encrypt_callback(xml, timestamp=stale, nonce=nonce)
    assert web.post(url, params={"msg_signature": stale_sig, "timestamp": stale,
                                 "nonce": nonce}, content=body).status_code == 403
    other = WecomCrypto(TOKEN, AES_KEY, "wwSOMEONEELSE")  # right keys, wrong receive id
    body2, sig2 = other.encrypt_callback(xml, timestamp=ts, nonce=nonce)
    refused = web.post(url, params={"msg_signature": sig2, "timestamp": ts, "nonce": nonce},
                       content=body2)
    assert refused.status_code == 403 and "receive id" in refused.text
    assert web.post(url, params={"msg_signature": good_sig, "timestamp": ts, "nonce": nonce},
                    content=b"<xml><Encrypt>").status_code == 422
    assert web.post(url, params={"msg_signature": good_sig, "timestamp": ts, "nonce": nonce},
                    content=b"x" * 70_000).status_code == 413
    assert web.post("/callbacks/wecom/wwUNKNOWN", params={
        "msg_signature": good_sig, "timestamp": ts, "nonce": nonce},
        content=body).status_code == 404
    for path in ("/callbacks/wecom/", f"/callbacks/wecom/{CORP}/extra"):  # were 500s
        assert web.post(path, content=body).status_code == 404, path
    huge = web.post(url, params={"msg_signature": good_sig, "timestamp": "9" * 400,
                                 "nonce": nonce}, content=body)
    assert huge.status_code == 422 and "timestamp" in huge.text
    assert snapshot(conn) == before
    assert web.post(url, params={"msg_signature": good_sig, "timestamp": ts, "nonce": nonce},
                    content=body).text == "success"


def test_every_fixture_through_the_endpoint(conn: Connection, rt: Runtime, fake: FakeWecom,
                                            web: TestClient) -> None:
    chat = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"
    fake.add_chat(chat, "夏令营群", "owner9")
    fake.tag_groups = [{"group_id": "etGROUP001", "group_name": "客户等级", "deleted": False,
                        "tag": [{"id": "etTAG0001", "name": "高意向", "deleted": False},
                                {"id": "etTAG0002", "name": "已成交", "deleted": False}]}]
    names = sorted(p.stem for p in FIXTURES.glob("*.xml"))
    for name in names:
        assert fake.send_callback(CORP, (FIXTURES / f"{name}.xml").read_text("utf-8"),
                                  http=web) == 200, name
    assert count(conn, raw_inbox) == len(names)
    stats = process(rt)
    assert stats.processed == len(names) and stats.failed == 0
    assert stats.skipped == {"msgaudit_notify": 1}
    kinds: dict[str, int] = dict(conn.execute(select(member_events.c.kind, func.count())
                                              .group_by(member_events.c.kind)).all())
    assert kinds["contact_added"] == 1 and kinds["contact_lost"] == 1
    assert kinds["contact_deleted"] == 2 and kinds["contact_transfer_failed"] == 1
    assert kinds["group_dismissed"] == 1
    # five joined by callback; the roster then says only the owner is in the group
    assert kinds["joined"] == 5 + 1 and kinds["left"] == 1 and kinds["removed"] == 1
    assert members_of(conn, chat) == {"owner9": ("invite", "")}
    state = conn.execute(select(groups.c.state).where(groups.c.external_id == chat)).scalar()
    assert state == "closed"
    assert set(conn.execute(select(tags.c.name).where(tags.c.tag_group == "客户等级"))
               .scalars()) == {"高意向", "已成交"}
    assert count(conn, platform_tags) == 2


def test_out_of_order_and_lost_callbacks(conn: Connection, rt: Runtime, fake: FakeWecom,
                                         web: TestClient) -> None:
    fake.add_chat("wrG2", "二群", "owner1")
    wecom_sync.sync_corp(rt.uow, adapter=rt.adapters["wecom"], corp_id=CORP)  # type: ignore[arg-type]
    t = int(utcnow().timestamp())
    add = fake.join("wrG2", "wmLATE", scene=3, at=t - 60, notify=False)
    gone = fake.leave("wrG2", "wmLATE", at=t - 30, notify=False)
    fake.send_callback(CORP, gone, http=web)  # the leave arrives first
    fake.send_callback(CORP, add, http=web)
    fake.join("wrG2", "wmLOST", scene=1, at=t - 20, notify=False)  # this callback is lost
    process(rt)
    current = members_of(conn, "wrG2")
    assert "wmLATE" not in current  # the late join did not reopen the membership
    assert current["wmLOST"] == ("invite", "")  # found by reconciling with groupchat/get
    left = conn.execute(select(memberships.c.left_at).join(
        identities, identities.c.member_id == memberships.c.member_id).where(
        identities.c.external_id == "wmLATE")).scalar_one()
    assert left is not None and int(left.timestamp()) == t - 30


def test_join_code_rotates_a_fresh_group_in(conn: Connection, rt: Runtime, fake: FakeWecom,
                                            web: TestClient) -> None:
    fake.add_chat("wrA", "A群", "owner1", members=85)
    fake.add_chat("wrS", "备用群", "owner1")
    adapter = rt.adapters["wecom"]
    wecom_sync.sync_corp(rt.uow, adapter=adapter, corp_id=CORP)  # type: ignore[arg-type]
    code = join_code_service.do_create_join_code(rt.uow, actor=SYSTEM, adapter=adapter,
                                                account=CORP, channel="poster-b", chats=["wrA"],
                                                capacity=100, fill_ratio=0.9)
    join_code_service.do_add_spares(rt.uow, actor=SYSTEM, code_id=code["id"], chats=["wrS"])
    way = fake.join_ways[code["config_id"]]
    assert way["state"] == "poster-b" and way["chat_id_list"] == ["wrA"]
    for i in range(5):  # 86 + 5 = 91 members ≥ 90 % of 100
        assert fake.scan(code["config_id"], f"wmB{i:04d}", notify=False) == "wrA"
    # these five callbacks were lost: the periodic sync finds the joins and their channel
    wecom_sync.sync_corp(rt.uow, adapter=adapter, corp_id=CORP)  # type: ignore[arg-type]
    rotated = join_code_service.rotate_join_codes(rt.uow, adapters=rt.adapters)
    assert [(r.filled, r.added) for r in rotated] == [(["wrA"], ["wrS"])]
    assert fake.join_ways[code["config_id"]]["chat_id_list"] == ["wrS"]
    xml = fake.join("wrS", "wmC0001", scene=3, state="poster-b", notify=False)
    fake.send_callback(CORP, xml, http=web)
    assert fake.scan(code["config_id"], "wmC0002", notify=False) == "wrS"
    process(rt)
    assert members_of(conn, "wrS")["wmC0001"] == ("qr", "poster-b")
    listed = join_code_service.access_join_code(conn, actor=SYSTEM, code_id=code["id"])
    roles = {g["chat_id"]: (g["role"], g["via_code"]) for g in listed["groups"]}
    assert roles == {"wrA": ("full", 5), "wrS": ("attached", 2)}
    assert listed["members_via_code"] == 7 and listed["rotations"] == 1
    # the spares are used up: a person is asked for a new group, once
    refill = conn.execute(select(staff_tasks.c.title).where(
        staff_tasks.c.kind == "join_code_refill")).scalars().all()
    assert len(refill) == 1 and "poster-b" in refill[0]
    assert join_code_service.rotate_join_codes(rt.uow, adapters=rt.adapters) == []  # type: ignore[arg-type]


def test_join_code_is_recorded_before_wecom_is_asked_and_a_failed_call_leaves_nothing(
        conn: Connection, rt: Runtime, fake: FakeWecom) -> None:
    """The code's row is written ("creating") before WeCom's add_join_way, so a crash
    between WeCom's answer and our write leaves a row naming the channel, not an orphan; a
    refused call frees the channel; a deleted code's channel can be used again (it hit the
    one-row-per-channel constraint: a 500)."""
    fake.add_chat("wrA", "A群", "owner1")
    adapter = rt.adapters["wecom"]
    wecom_sync.sync_corp(rt.uow, adapter=adapter, corp_id=CORP)  # type: ignore[arg-type]

    def create() -> dict[str, object]:
        return join_code_service.do_create_join_code(  # type: ignore[no-any-return]
            rt.uow, actor=SYSTEM, adapter=adapter, account=CORP,
            channel="poster-c", chats=["wrA"])

    fake.inject["externalcontact/groupchat/add_join_way"] = [40058]  # WeCom refuses
    with pytest.raises(WecomApiError):
        create()
    assert join_code_service.list_join_codes(conn, actor=SYSTEM) == []
    assert fake.join_ways == {}
    code = create()
    assert code["state"] == "active" and code["config_id"] in fake.join_ways
    # a creation that stopped half-way: the row is there, says so, and can be deleted
    join_code_service.do_delete_join_code(rt.uow, actor=SYSTEM, adapters=rt.adapters,
                                         code_id=int(code["id"]))  # type: ignore[call-overload]
    conn.execute(join_codes.update().where(join_codes.c.id == code["id"])
                 .values(state="creating", config_id=""))
    with pytest.raises(Conflict, match="stopped half-way"):
        create()
    assert [c["state"] for c in join_code_service.list_join_codes(conn, actor=SYSTEM)] == [
        "creating"]
    join_code_service.do_delete_join_code(rt.uow, actor=SYSTEM, adapters=rt.adapters,
                                         code_id=int(code["id"]))  # type: ignore[call-overload]
    again = create()  # the deleted code's channel is free again, on the same row
    assert again["id"] == code["id"] and again["state"] == "active"
    assert again["config_id"] != code["config_id"] and again["config_id"] in fake.join_ways


def test_broadcast_becomes_owner_confirmed_sends_then_results(
        conn: Connection, rt: Runtime, fake: FakeWecom) -> None:
    fake.add_chat("wrA", "A群", "owner1")
    fake.add_chat("wrB", "B群", "owner1")
    fake.add_chat("wrC", "C群", "owner2")
    wecom_sync.sync_corp(rt.uow, adapter=rt.adapters["wecom"], corp_id=CORP)  # type: ignore[arg-type]
    automation.do_update_settings(conn, actor=SYSTEM, section="broadcast",
                                  values={"quiet_hours": ""})
    gids = list(conn.execute(select(groups.c.id).where(groups.c.platform == "wecom")
                             .order_by(groups.c.external_id)).scalars())
    broadcasts.do_create_broadcast(conn, actor=SYSTEM, name="直播预告",
                                   target={"groups": gids}, text="今晚8点直播")
    schedules.fire_due(rt.uow, config=rt.ingest_config)
    task = conn.execute(select(staff_tasks).where(
        staff_tasks.c.kind == pushes.CONFIRM_TASK)).mappings().one()
    now = utcnow()
    submitted = confirmations.submit_due(rt.uow, adapters=rt.adapters, now=now)
    assert submitted.submitted == 2  # one add_msg_template per owner
    sends = {s["body"]["sender"]: (m, s) for m, s in fake.sends.items()}
    assert sorted(sends["owner1"][1]["body"]["chat_id_list"]) == ["wrA", "wrB"]
    assert sends["owner2"][1]["body"]["text"]["content"] == "今晚8点直播"
    assert confirmations.poll(rt.uow, adapters=rt.adapters, now=now).sent == 0
    fake.confirm_send(sends["owner1"][0], "owner1", refused={"wrB": 3})
    polled = confirmations.poll(rt.uow, adapters=rt.adapters, now=now)
    assert (polled.sent, polled.failed, polled.closed) == (1, 1, 0)
    assert confirmations.do_remind(rt.uow, actor=SYSTEM, adapters=rt.adapters,
                                   task_id=task["id"]) == 2
    assert fake.sends[sends["owner2"][0]]["reminded"] == 1
    fake.confirm_send(sends["owner2"][0], "owner2")
    assert confirmations.poll(rt.uow, adapters=rt.adapters, now=now).closed == 1
    rows = dict(conn.execute(select(groups.c.external_id, outbox.c.status).join(
        groups, groups.c.id == outbox.c.group_id).where(
        outbox.c.staff_task_id == task["id"])).all())
    assert rows == {"wrA": "delivered", "wrB": "dead", "wrC": "delivered"}
    done = conn.execute(select(staff_tasks.c.status, staff_tasks.c.outcome).where(
        staff_tasks.c.id == task["id"])).one()
    assert done.status == "done" and "2" in done.outcome


def test_bad_setup_is_refused_with_nothing_written(conn: Connection, rt: Runtime) -> None:
    before = snapshot(conn)
    from qunyun.services.errors import InvalidInput

    for kwargs, field in [({"aes_key": "short"}, "aes_key"), ({"token": "a b"}, "token"),
                          ({"corp_id": "!"}, "corp_id"), ({"agent_id": 0}, "agent_id")]:
        args = {"corp_id": "wwNEW00001", "agent_id": 1, "secret": "s", "token": "t",
                "aes_key": AES_KEY, **kwargs}
        with pytest.raises(InvalidInput, match=field):
            wecom.do_add_corp(conn, actor=SYSTEM, box=rt.box, now=utcnow(), **args)  # type: ignore[arg-type]
    assert snapshot(conn) == before

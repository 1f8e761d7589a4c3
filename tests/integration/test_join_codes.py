"""Join codes on any platform that declares ``create_join_code`` (here the sandbox): the
code is made through the adapter, members it brings are traced to its channel, full groups
rotate out for spares, and a platform without the capability is refused before anything is
written."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select

from qunyun.adapters.platforms.sandbox import SandboxAdapter
from qunyun.adapters.storage.tables import join_codes, staff_tasks
from qunyun.bootstrap import Runtime, build_runtime
from qunyun.config import Settings
from qunyun.domain.actions import Capability
from qunyun.services import join_codes as service
from qunyun.services.errors import Conflict, InvalidInput
from qunyun.services.ingest import do_ingest_event
from qunyun.services.users import SYSTEM
from tests.dbhelpers import snapshot
from tests.factories import event, raw_join


def join(conn: Connection, runtime: Runtime, eid: str, chat: str, user: str,
         channel: str = "") -> None:
    ev = event(raw_join(eid, chat, user, scene="qr", channel=channel))
    do_ingest_event(conn, ev, config=runtime.ingest_config, received_at=ev.occurred_at)


def test_a_sandbox_code_traces_members_and_rotates_full_groups(
        conn: Connection, runtime: Runtime, sandbox: SandboxAdapter) -> None:
    for chat in ("g1", "g2"):  # the groups exist once someone is in them
        join(conn, runtime, f"seed-{chat}", chat, f"owner-{chat}")
    code = service.do_create_join_code(runtime.uow, actor=SYSTEM, adapter=sandbox,
                                       account="demo", channel="海报A", chats=["g1"],
                                       capacity=100, fill_ratio=0.5)
    service.do_add_spares(runtime.uow, actor=SYSTEM, code_id=int(code["id"]), chats=["g2"])
    assert code["state"] == "active" and code["platform"] == "sandbox"
    made = sandbox.join_codes[code["config_id"]]
    assert made.channel == "海报A" and made.chats == ("g1",)
    assert code["qr_code"].endswith(code["config_id"])  # what people scan
    for i in range(49):  # 1 + 49 = 50 members: half of 100
        join(conn, runtime, f"j{i}", "g1", f"u{i}", channel="海报A")
    rotated = service.rotate_join_codes(runtime.uow, adapters=runtime.adapters)
    assert [(r.filled, r.added, r.attached) for r in rotated] == [(["g1"], ["g2"], ["g2"])]
    assert sandbox.join_codes[code["config_id"]].chats == ("g2",)  # the platform repointed
    join(conn, runtime, "late", "g2", "late-user", channel="海报A")
    shown = service.access_join_code(conn, actor=SYSTEM, code_id=int(code["id"]))
    assert {g["chat_id"]: (g["role"], g["via_code"]) for g in shown["groups"]} == {
        "g1": ("full", 49), "g2": ("attached", 1)}
    assert shown["members_via_code"] == 50 and shown["rotations"] == 1
    # no spare left: one task asks a person for a new group, on the sandbox's platform
    refill = conn.execute(select(staff_tasks.c.platform).where(
        staff_tasks.c.kind == service.REFILL_TASK)).scalars().all()
    assert refill == ["sandbox"]
    service.do_delete_join_code(runtime.uow, actor=SYSTEM, adapters=runtime.adapters,
                                code_id=int(code["id"]))
    assert code["config_id"] not in sandbox.join_codes
    assert service.list_join_codes(conn, actor=SYSTEM, platform="sandbox") == []


def test_the_capability_and_the_platform_limits_are_checked_before_anything_is_written(
        conn: Connection, runtime: Runtime, sandbox: SandboxAdapter) -> None:
    join(conn, runtime, "seed", "g1", "owner")
    before = snapshot(conn)
    with pytest.raises(InvalidInput, match="capacity: one of 100, 200, 500, 2000"):
        service.do_create_join_code(runtime.uow, actor=SYSTEM, adapter=sandbox, account="a",
                                    channel="c", chats=["g1"], capacity=300)
    with pytest.raises(InvalidInput, match="not a sandbox group"):
        service.do_create_join_code(runtime.uow, actor=SYSTEM, adapter=sandbox, account="a",
                                    channel="c", chats=["nowhere"])
    sandbox.capabilities = sandbox.capabilities - {Capability.CREATE_JOIN_CODE}
    with pytest.raises(InvalidInput, match="cannot make join codes") as refused:
        service.do_create_join_code(runtime.uow, actor=SYSTEM, adapter=sandbox, account="a",
                                    channel="c", chats=["g1"])
    assert refused.value.in_language("zh-CN") == "平台 'sandbox' 不能生成群活码"
    assert snapshot(conn) == before and sandbox.join_codes == {}
    assert service.rotate_join_codes(runtime.uow, adapters=runtime.adapters) == []


def test_a_channel_has_one_live_code_per_account(conn: Connection, runtime: Runtime,
                                                 sandbox: SandboxAdapter) -> None:
    join(conn, runtime, "seed", "g1", "owner")

    def create(account: str) -> dict[str, object]:
        return service.do_create_join_code(runtime.uow, actor=SYSTEM, adapter=sandbox,
                                           account=account, channel="直播间", chats=["g1"])

    first = create("team-a")
    with pytest.raises(Conflict, match="already has a join code"):
        create("team-a")
    create("team-b")  # another account's channel of the same name is its own
    assert conn.execute(select(func.count()).select_from(join_codes)).scalar_one() == 2
    assert len(sandbox.join_codes) == 2 and first["config_id"] in sandbox.join_codes



def test_two_workers_making_the_same_channels_code_one_wins(fresh_db_url: str,
                                                             tmp_path: Path) -> None:
    """Two workers claim the same channel at the same moment, on real commits: one code is
    made, the other is told it is being made (a refusal, never a database error)."""
    rt = build_runtime(Settings(database_url=fresh_db_url, data_dir=tmp_path / "var",
                                sandbox_store=str(tmp_path / "sandbox.db")))
    try:
        with rt.uow.write() as conn:
            gid = do_ingest_event(conn, event(raw_join("g", "race", "owner")),
                                  config=rt.ingest_config).group_id
        assert gid is not None
        def make(barrier: threading.Barrier, outcomes: list[str], channel: str) -> None:
            barrier.wait()
            try:
                service.do_create_join_code(rt.uow, actor=SYSTEM, adapter=rt.adapter("sandbox"),
                                            account="a", channel=channel, chats=[gid])
                outcomes.append("made")
            except Conflict:
                outcomes.append("refused")
            except Exception as exc:  # what the test is about: never this
                outcomes.append(type(exc).__name__)

        for round_ in range(8):  # the race is narrow: several rounds
            barrier, outcomes = threading.Barrier(2), []
            threads = [threading.Thread(target=make, args=(barrier, outcomes, f"race{round_}"))
                       for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            assert sorted(outcomes) == ["made", "refused"], outcomes
        with rt.uow.read() as conn:
            assert conn.execute(select(func.count()).select_from(join_codes)).scalar_one() == 8
    finally:
        rt.close()

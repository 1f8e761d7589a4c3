"""The API client against the fake WeCom server: tokens, retries, back-off, limits, errors."""

from __future__ import annotations

import logging

import pytest

from qunyun.adapters.platforms.wecom.client import WecomApiError, WecomClient
from qunyun.adapters.platforms.wecom.fake import FakeWecom
from tests.adapters.wecom.conftest import CORP, SECRET


def client(fake: FakeWecom, sleeps: list[float], **kw: object) -> WecomClient:
    return WecomClient(CORP, SECRET, base_url=fake.base_url, sleep=sleeps.append, **kw)  # type: ignore[arg-type]


def test_token_is_cached_and_refreshed_when_refused(fake: FakeWecom) -> None:
    fake.add_chat("wrA", "一群", "owner1", members=3)
    sleeps: list[float] = []
    c = client(fake, sleeps)
    assert c.group_chat_ids() == ["wrA"]
    assert c.group_chat("wrA")["name"] == "一群"
    assert len(fake.tokens) == 1  # one token for both calls
    fake.inject["externalcontact/groupchat/get"] = [42001]  # expired
    assert len(c.group_chat("wrA")["member_list"]) == 4
    assert len(fake.tokens) == 2 and sleeps == []


def test_busy_and_rate_limited_replies_back_off_then_succeed(fake: FakeWecom) -> None:
    fake.add_chat("wrA", "一群", "owner1")
    sleeps: list[float] = []
    c = client(fake, sleeps, backoff_seconds=0.5)
    fake.inject["externalcontact/groupchat/get"] = [-1, 45009, 45033]
    assert c.group_chat("wrA")["chat_id"] == "wrA"
    assert sleeps == [0.5, 1.0, 2.0]


def test_the_servers_rate_limit_ends_in_a_clear_error(fake: FakeWecom) -> None:
    fake.add_chat("wrA", "一群", "owner1")
    fake.rate_per_minute = 2
    sleeps: list[float] = []
    c = client(fake, sleeps, max_retries=2)
    c.group_chat("wrA")
    c.group_chat("wrA")
    with pytest.raises(WecomApiError) as info:
        c.group_chat("wrA")
    assert info.value.code == 45009 and info.value.transient
    assert "接口调用超过限制" in str(info.value)
    assert len(sleeps) == 2


@pytest.mark.parametrize(("code", "words"), [(48002, "可调用接口的应用"), (40050, "客户群不存在")])
def test_errors_are_named(fake: FakeWecom, code: int, words: str) -> None:
    fake.inject["externalcontact/groupchat/get"] = [code]
    with pytest.raises(WecomApiError, match=words) as info:
        client(fake, []).group_chat("wrA")
    assert not info.value.transient


def test_bad_secret(fake: FakeWecom) -> None:
    with pytest.raises(WecomApiError, match="secret") as info:
        WecomClient(CORP, "wrong", base_url=fake.base_url).group_chat_ids()
    assert info.value.code == 40001


def test_unreachable_server_is_transient() -> None:
    with pytest.raises(WecomApiError) as info:
        WecomClient(CORP, SECRET, base_url="http://127.0.0.1:9/cgi-bin").group_chat_ids()
    assert info.value.transient and "network" in str(info.value)


def test_join_way_lifecycle_and_paging(fake: FakeWecom) -> None:
    for i in range(3):
        fake.add_chat(f"wr{i}", f"群{i}", "owner1")
    c = client(fake, [])
    assert sorted(c.pages("externalcontact/groupchat/list", {"limit": 2, "status_filter": 0},
                          "group_chat_list"), key=str) == [
        {"chat_id": f"wr{i}", "status": 0} for i in range(3)]
    cfg = c.add_join_way({"scene": 2, "chat_id_list": ["wr0", "wr1"], "state": "poster-a",
                          "remark": "海报A"})
    assert c.get_join_way(cfg)["qr_code"]
    c.update_join_way({"config_id": cfg, "scene": 2, "chat_id_list": ["wr1", "wr2"]})
    assert c.get_join_way(cfg)["chat_id_list"] == ["wr1", "wr2"]
    with pytest.raises(WecomApiError):
        c.update_join_way({"config_id": cfg, "chat_id_list": [f"wr{i}" for i in range(6)]})
    c.del_join_way(cfg)
    with pytest.raises(WecomApiError):
        c.get_join_way(cfg)


def test_secrets_never_reach_the_logs(fake: FakeWecom, caplog: pytest.LogCaptureFixture) -> None:
    """httpx logs each request's URL at INFO; gettoken carries the secret and every call the
    access token in its query string."""
    fake.add_chat("wrA", "一群", "owner1")
    with caplog.at_level(logging.DEBUG):
        assert client(fake, []).group_chat_ids() == ["wrA"]
    lines = [r.getMessage() for r in caplog.records]
    assert any("gettoken" in line for line in lines) and any(
        "access_token=***" in line for line in lines)
    assert not any(SECRET in line for line in lines)
    assert not any(token in line for line in lines for token in fake.tokens)

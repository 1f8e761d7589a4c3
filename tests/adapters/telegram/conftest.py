"""A fake Bot API server over real HTTP, and a runtime whose Telegram adapter talks to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qunyun.adapters.platforms.telegram.fake import FakeTelegram
from qunyun.bootstrap import Runtime, make_telegram_adapter

CHAT = -1001234567890
BOT = 7000001


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    server = FakeTelegram()
    server.add_chat(CHAT, '家长交流群"1"')
    server.serve()
    yield server
    server.stop()


@pytest.fixture
def tg_runtime(runtime: Runtime, tg: FakeTelegram) -> Runtime:
    runtime.settings = runtime.settings.model_copy(update={"telegram_api_base": tg.base_url})
    runtime.adapters["telegram"] = make_telegram_adapter(runtime)
    return runtime


from tests.web.conftest import staff  # noqa: E402,F401  # one account per role

"""The seed scenarios' community, on the sandbox and on Telegram groups (the ``live``
fixture runs a scenario once per platform)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection

from qunyun.adapters.platforms.telegram.fake import FakeTelegram
from qunyun.bootstrap import Runtime, make_telegram_adapter
from tests.scenarios.live import Live
from tests.scenarios.telegram_live import TelegramLive


@pytest.fixture(params=["sandbox", "telegram"])
def live(request: pytest.FixtureRequest, conn: Connection, runtime: Runtime) -> Iterator[Live]:
    """The same community on the sandbox and on Telegram groups run by an admin bot."""
    if request.param == "sandbox":
        yield Live(conn, runtime)
        return
    tg = FakeTelegram().serve()
    runtime.settings = runtime.settings.model_copy(update={"telegram_api_base": tg.base_url})
    runtime.adapters["telegram"] = make_telegram_adapter(runtime)
    try:
        yield TelegramLive(conn, runtime, tg=tg)
    finally:
        tg.stop()

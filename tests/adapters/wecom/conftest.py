"""A fake WeCom server over real HTTP for every WeCom test (one per test: its state is small)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qunyun.adapters.platforms.wecom.fake import FakeWecom

CORP = "wwfake0000000001"
SECRET = "fake-secret"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


@pytest.fixture
def fake() -> Iterator[FakeWecom]:
    server = FakeWecom()
    server.add_corp(CORP, SECRET, TOKEN, AES_KEY)
    server.serve()
    yield server
    server.stop()

"""Shared fixtures of the command tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def english(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands speak English (``QUNYUN_LANGUAGE=en``): for tests whose assertions read the
    English sentences; the Chinese default is checked by ``test_errors_speak_chinese``."""
    monkeypatch.setenv("QUNYUN_LANGUAGE", "en")


from tests.adapters.telegram.conftest import tg  # noqa: E402,F401  # the fake Bot API

"""Chat members and careless staff write markup: hostile nicknames, group names, messages,
scripts, FAQ answers, tag and segment names shown on every page in Debian's chromium, at a
phone's width and a laptop's — no script of theirs runs, no dialog opens.

Skips with a reason when chromium is missing, unless QUNYUN_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_browser import ARGS, CHROMIUM, Run, _log_in, _need_browser, dashboard
from tests.factories import raw_join, raw_message

pytestmark = pytest.mark.browser

# each payload sets window.__xss (or opens a dialog) if it ever runs
PAYLOADS = ['<img src=x onerror="window.__xss=1">', "<script>window.__xss=2</script>",
            '"><svg onload=alert(3)>', "javascript:alert(4)", "{{7*7}}<b>粗</b>、"]
NAME = PAYLOADS[0] + "小红"
GROUP = PAYLOADS[1] + "群"


def _seed(run: Run, tmp: Path) -> None:
    join = {**raw_join("h1", "g1", "u1", name=NAME, channel=PAYLOADS[2]), "chat_name": GROUP}
    said = {**raw_message("h2", "g1", "u1", " ".join(PAYLOADS), name=NAME),
            "chat_name": GROUP}
    events = tmp / "events.jsonl"
    events.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in (join, said)))
    run("ingest", str(events))
    (tmp / "token").write_text(json.loads(run("users", "token", "boss", "--json"))["token"])


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _need_browser()
    tmp = tmp_path_factory.mktemp("hostile")
    with dashboard(tmp, _seed) as base:
        import httpx

        token = (tmp / "token").read_text()
        with httpx.Client(base_url=base + "/api/v1",
                          headers={"Authorization": f"Bearer {token}"}) as api:
            for path, body in (
                    ("/faqs", {"questions": [PAYLOADS[3]], "answer": " ".join(PAYLOADS)}),
                    ("/scripts", {"name": PAYLOADS[1], "body": " ".join(PAYLOADS)}),
                    ("/tags", {"name": PAYLOADS[0], "group": PAYLOADS[2]}),
                    ("/segments", {"name": PAYLOADS[2], "expression": 'said ~ "<script>"'}),
                    ("/playbooks", {"name": PAYLOADS[0], "description": PAYLOADS[1]})):
                answer = api.post(path, json=body)
                assert answer.status_code in (200, 201), (path, answer.text)
        yield base


def pages(base: str) -> list[str]:
    """Every page a staff member can open without an id, plus the hostile member's, group's
    and objects' own pages."""
    return ["/", "/groups", "/groups/1", "/health", "/health/import", "/members",
            "/members/1", "/members/attributes", "/members/suggestions", "/members/blacklist",
            "/tags", "/segments", "/leads?expression=has_phone%20or%20not%20has_phone",
            "/tasks", "/outbox", "/audit", "/users", "/account", "/automation",
            "/automation/faq", "/automation/moderation", "/automation/checkins",
            "/automation/draws", "/content/scripts", "/content/scripts/1",
            "/content/playbooks", "/content/playbooks/1", "/content/timeline",
            "/content/broadcasts", "/content/deliveries", "/activities",
            "/activities/cohorts", "/wecom"]


@pytest.mark.parametrize("width", [390, 1280])
def test_no_hostile_markup_runs_on_any_page(hostile_server: str, width: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": width, "height": 844})
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(f"{page.url}: {d.message}"), d.dismiss()))
        _log_in(page, hostile_server)
        shown = 0
        for path in pages(hostile_server):
            answer = page.goto(hostile_server + path)
            assert answer is not None and answer.status < 500, (path, answer and answer.status)
            ran: Any = page.evaluate("window.__xss")
            assert ran is None, f"{path}: a payload ran ({ran})"
            body = page.content()
            shown += sum(1 for p in ("小红", "window.__xss", "{{7*7}}") if p in body)
            assert "<img src=x onerror" not in body, path  # present only escaped
        assert dialogs == []
        assert shown >= 10  # the hostile words are on the pages, as text
        browser.close()

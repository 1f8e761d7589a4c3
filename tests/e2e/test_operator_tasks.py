"""Two of issue 26's operator tasks, done as an operator does them in Debian's chromium: on a
phone, find member 10005 and add a note and a tag; on a laptop, find the channel that
brought the most enrolled members. (The third, scheduling a broadcast for tomorrow 20:00 and
checking its preview, is in test_browser.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_browser import ARGS, CHROMIUM, Run, _log_in, _need_browser, dashboard
from tests.factories import raw_join

pytestmark = pytest.mark.browser

# 30 people join through three posters and a member's invitations; poster B brings fewer
# people than poster A but more of them enrol
CHANNELS = ["海报A"] * 12 + ["海报B"] * 8 + ["社群裂变"] * 6 + [""] * 4
ENROL = [3, 4, 13, 14, 15, 16, 17, 21]  # member 10000 + n: two from A, five from B, one fission


def _seed(run: Run, tmp: Path) -> None:
    events = [raw_join(f"j{n}", "g1", f"u{n}", name=f'学员{n}"号"' if n != 5 else "王小明🌸",
                       minutes=n, channel=CHANNELS[n - 1]) for n in range(1, 31)]
    path = tmp / "joins.jsonl"
    path.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in events) + "\n",
                    encoding="utf-8")
    run("ingest", str(path))
    run("activities", "series-add", "X", "--name", "英语打卡")
    run("activities", "add", "X", "--start", "2026-11-25", "--end", "2026-12-15")
    for n in ENROL:
        run("activities", "enrol", "X1", "--member", str(10000 + n))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _need_browser()
    with dashboard(tmp_path_factory.mktemp("tasks"), _seed) as base:
        yield base


def test_on_a_phone_find_member_10005_and_add_a_note_and_a_tag(server: str,
                                                              tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 844})
        _log_in(page, server)
        page.click("#nav-button")  # the folded menu
        page.click("#nav >> text=成员")
        page.fill("#member-search input[name=q]", "10005")
        page.click("#member-search button[type=submit]")
        expect(page.locator("#pager")).to_contain_text("共 1 条")
        page.click("#members-table >> text=10005")
        expect(page.locator("h1")).to_contain_text("王小明🌸")
        page.fill("#record-form textarea[name=body]", '家长说周末再报名，"暑期班"想了解')
        page.click("#record-form button[type=submit]")
        expect(page.locator("#records")).to_contain_text('"暑期班"想了解')
        page.fill("#tag-form input[name=tag]", "意向客户")
        page.click("#tag-form button[type=submit]")
        expect(page.locator("#tags")).to_contain_text("意向客户")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the member page is {width}px wide on a 390px phone"
        page.screenshot(path=str(tmp_path / "member-10005.png"), full_page=True)
        browser.close()


def test_find_the_channel_that_brought_the_most_enrolled_members(server: str,
                                                                 tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        _log_in(page, server)
        page.click("nav >> text=活动")
        page.click("text=渠道效果")
        expect(page.locator("#channel-reading")).to_contain_text("按首次触点归因")
        expect(page.locator("#channel-winner")).to_contain_text("海报B")
        expect(page.locator("#channel-winner")).to_contain_text("8 位新成员中 5 人报名")
        first_row = page.locator("#channel-table tr").nth(1)
        expect(first_row).to_contain_text("海报B")
        expect(page.locator("#chart-channels")).to_have_attribute("data-rendered", "1")
        chart_csv = page.evaluate("document.getElementById('chart-channels').csv()")
        lines = chart_csv.lstrip("\ufeff").splitlines()
        assert lines[0] == "渠道,新成员,报名,付费,购买" and lines[1] == "海报B,8,5,0,0", lines
        with page.expect_download() as download:
            page.click("#channel-csv")
        sheet = Path(download.value.path()).read_text(encoding="utf-8-sig")
        assert sheet.splitlines()[1].startswith("海报B,8,5")
        page.screenshot(path=str(tmp_path / "channels.png"), full_page=True)
        browser.close()


def test_build_a_segment_and_a_lead_score_without_writing_an_expression(
        server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 844})
        _log_in(page, server)
        page.goto(server + "/segments")
        builder = page.locator("#segment-builder .builder")
        row = builder.locator(".builder-row").first
        row.locator("select").nth(0).select_option("channel")  # 入群渠道
        row = builder.locator(".builder-row").first
        row.locator("input[type=text]").fill("海报B")
        box = page.locator("#segment-expression")
        expect(box).to_have_value('channel = "海报B"')
        expect(page.locator("#segment-count")).to_have_text("8")
        # a second group: … or anyone who joined through the fission posts
        builder.locator("button", has_text="添加条件组").click()
        second = builder.locator(".builder-group").nth(1).locator(".builder-row").first
        second.locator("select").nth(0).select_option("channel")
        second = builder.locator(".builder-group").nth(1).locator(".builder-row").first
        second.locator("input[type=text]").fill("社群裂变")
        builder.locator(".builder-top select").select_option("or")
        expect(box).to_have_value('channel = "海报B" or channel = "社群裂变"')
        expect(page.locator("#segment-count")).to_have_text("14")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(tmp_path / "segment-builder.png"), full_page=True)
        # the lead page opens ranked and says how it scores, in words
        page.goto(server + "/leads")
        expect(page.locator("#leads-total")).to_have_text("30")
        expect(page.locator("#leads-formula-words")).to_contain_text("近 30 天发言条数")
        expect(page.locator("#leads-formula-words")).to_contain_text("所有未拉黑的成员")
        formula = page.locator("#leads-formula-builder .builder")
        formula.locator("button", has_text="添加得分项").click()
        term = formula.locator(".builder-row").nth(2)
        term.locator("input.builder-points").fill("20")
        term.locator("select").nth(0).select_option("channel")
        term = formula.locator(".builder-row").nth(2)
        term.locator("input[type=text]").fill("海报B")
        expect(page.locator("#leads-formula")).to_have_value(
            '1 * messages[30d] @14d + 5 * events.joined + 20 * (channel = "海报B")')
        page.click("#leads-form button[type=submit]")
        expect(page.locator("#leads-table tr").nth(1)).to_contain_text("入群渠道")
        browser.close()

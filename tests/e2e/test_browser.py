"""A person's path through the dashboard, in Debian's chromium driven by Playwright.

Skips with a reason when chromium is missing, unless QUNYUN_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from qunyun.clock import utcnow
from tests.factories import raw_join, raw_message
from tests.servers import free_port, wait_healthy

CHROMIUM = os.environ.get("QUNYUN_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "browser-pass-1"

pytestmark = pytest.mark.browser


def _need_browser() -> None:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} not installed (apt-get install chromium)"
        if os.environ.get("QUNYUN_REQUIRE_BROWSER") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


Run = Callable[..., str]


@contextmanager
def dashboard(tmp: Path, seed: Callable[[Run, Path], None]) -> Iterator[str]:
    """A migrated SQLite database with the owner account, ``seed(run, tmp)`` (``run`` calls
    the CLI), then ``qunyun serve`` on a free port; yields its address."""
    env = {**os.environ, "QUNYUN_DATA_DIR": str(tmp), "QUNYUN_DATABASE_URL": ""}
    cli = [sys.executable, "-m", "qunyun"]

    def run(*args: str, stdin: str | None = None) -> str:
        return subprocess.run([*cli, *args], env=env, check=True, input=stdin, text=True,
                              capture_output=True).stdout

    run("db", "upgrade")
    run("users", "create", "boss", "--role", "admin", "--password", "-", stdin=PASSWORD)
    seed(run, tmp)
    port = free_port()
    proc = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


SEEDED: dict[str, str] = {}  # what the seed made that a test opens (a claim link)


def _seed(run: Run, tmp: Path) -> None:
    run("automation", "set", "moderation", "enabled=true", 'escalation=["remove"]')

    ad = {**raw_message("b3", "g1", "ad1", "低息贷款当天放款，联系电话 13812345678",
                        name="贷款小王"), "at": utcnow().isoformat()}  # live: acted on
    events = tmp / "events.jsonl"
    events.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in [
        raw_join("b1", "g1", "u1", name="张三"), raw_message("b2", "g1", "u1", "请问价格"),
        ad, {"type": "join_request", "id": "r1", "at": utcnow().isoformat(), "chat": "g1",
             "user": "u9", "user_name": "申请的一位很长名字的家长（三年级二班）",
             "channel": "海报A", "bio": "想了解课程安排和作息时间，孩子三年级"}]))
    run("ingest", str(events))
    run("fission", "create", "--name", "邀请好友领福利", "--group", "1",
        "--stage", "2:保温杯:10", "--stage", "5:训练营名额:3", "--stage", "截图:电子书:50",
        "--account", "demo")
    SEEDED["token"] = json.loads(run("fission", "join", "1", "--member", "10001",
                                     "--json"))["token"]
    shot = tmp / "shot.png"  # a screenshot the member sent staff, waiting for review
    Image.new("RGB", (390, 844), "#dfe8e4").save(shot)
    run("fission", "submit-shot", "1", "--member", "10001", "--file", str(shot))
    friends = tmp / "friends.jsonl"  # two friends through 10001's code: the stage is reached
    friends.write_text("\n".join(json.dumps({**raw_join(
        f"fx{i}", "g1", f"fx{i}", name=f"好友{i}", scene="qr", channel="fx1m10001"),
        "at": utcnow().isoformat()}, ensure_ascii=False) for i in range(2)))
    run("ingest", str(friends))
    run("worker", "--once")  # the worker settles the invites: the stage is reached
    today = utcnow().date()
    run("plan", "create", "--name", "双十二发售", "--from", str(today - timedelta(days=3)),
        "--to", str(today + timedelta(days=4)), "--groups", "1", "--target-deposits", "20")
    for kind, first, last in (("recruiting", -3, 1), ("launch", 2, 2), ("follow_up", 3, 4)):
        run("plan", "stage", "1", "--kind", kind, "--from", str(today + timedelta(days=first)),
            "--to", str(today + timedelta(days=last)))
    # a broadcast the plan's group gets on its launch day: a mark on the plan's timeline
    run("broadcast", "send", "--name", "开营提醒", "--text", "今晚八点开营", "--groups", "1",
        "--at", f"{today + timedelta(days=2)} 20:00")
    (reward,) = json.loads(run("fission", "rewards", "1", "--json"))
    SEEDED["claim"] = json.loads(run("fission", "claim-link", str(reward["id"]),
                                     "--json"))["link"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _need_browser()
    with dashboard(tmp_path_factory.mktemp("e2e"), _seed) as base:
        yield base


def _log_in(page: Any, server: str) -> None:
    """Sign in as the seeded owner (every test but the first, which tests the form itself)."""
    page.goto(server + "/login")
    page.fill("#username", "boss")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def test_log_in_see_dashboard_switch_language_and_browse(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server + "/")
        expect(page).to_have_url(server + "/login?next=/")
        page.fill("#username", "boss")
        page.fill("#password", "wrong password")
        page.click("button[type=submit]")
        expect(page.locator("#login-error")).to_contain_text("用户名或密码错误")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("#dashboard-title")).to_have_text("运营概览")
        expect(page.locator("#stat-groups")).to_have_text("1")
        expect(page.locator("#chart-activity")).to_have_attribute("data-rendered", "1")
        assert page.locator("#chart-activity canvas").count() == 1
        page.screenshot(path=str(tmp_path / "dashboard.png"))
        page.click("#lang-switch")
        expect(page.locator("#dashboard-title")).to_have_text("Operations overview")
        page.click("text=Groups")
        page.click("text=群g1")
        expect(page.locator("body")).to_contain_text("请问价格")
        page.fill("#welcome_template", "Welcome {name}!")
        page.click("#group-settings button[type=submit]")
        expect(page.locator(".flash")).to_have_text("Saved")
        expect(page.locator("#welcome_template")).to_have_value("Welcome {name}!")
        page.click("text=Group health")
        expect(page.locator("#health-title")).to_have_text("Group health")
        page.click("#health-table >> text=群g1")
        heat = page.locator(".chart[id^=chart-heat]")
        expect(heat).to_have_attribute("data-rendered", "1")
        expect(page.locator(".score-parts")).to_contain_text("Activity")
        page.screenshot(path=str(tmp_path / "health.png"), full_page=True)
        browser.close()


def test_crm_segment_builder_tags_and_lead_export(server: str, tmp_path: Path) -> None:
    """The operator's CRM round: live segment count while typing, save it, tag a member on
    the profile, rank the segment and download the Excel file."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        _log_in(page, server)
        page.goto(server + "/segments")
        page.fill("#segment-expression", 'said ~ "价格"')
        expect(page.locator("#segment-count")).to_have_text("1")
        page.fill("#segment-expression", 'said ~ "价格" and tag =')
        expect(page.locator("#segment-error")).to_contain_text("人群分组：")
        page.fill("#segment-expression", 'said ~ "价格"')
        expect(page.locator("#segment-count")).to_have_text("1")
        page.fill("#segment-name", "问过价格的人")
        page.click("#segment-save")
        expect(page.locator("#segments-table")).to_contain_text("问过价格的人")
        page.click("#segments-table >> text=1")
        page.click("#members-table >> text=10001")
        page.fill("#tag-form input[name=tag]", "意向/高")
        page.click("#tag-form button[type=submit]")
        expect(page.locator("#tags")).to_contain_text("意向/高")
        expect(page.locator("#timeline")).to_contain_text("加标签")
        page.goto(server + "/leads")
        page.select_option("#leads-segment", label="问过价格的人")
        page.fill("#leads-formula", '1 * messages + 10 * (tag = "意向/高")')
        page.click("#leads-form button[type=submit]")
        expect(page.locator("#leads-table")).to_contain_text('标签 是 “意向/高” 时计 10 分')
        with page.expect_download() as download:
            page.click("#leads-export button[value=xlsx]")
        saved = tmp_path / "leads.xlsx"
        download.value.save_as(saved)
        assert saved.read_bytes()[:2] == b"PK"
        page.screenshot(path=str(tmp_path / "leads.png"), full_page=True)
        browser.close()


def test_automation_faq_moderation_and_draw(server: str, tmp_path: Path) -> None:
    """An operator adds an FAQ, switches moderation on, tries the classifier and runs a
    reproducible draw — in a real browser."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(locale="zh-CN")
        _log_in(page, server)
        page.click("text=自动化")
        page.check("#settings-moderation input[name=enabled]")
        page.click("#settings-moderation button[type=submit]")
        expect(page.locator("#settings-moderation input[name=enabled]")).to_be_checked()
        page.goto(server + "/automation/faq")
        page.fill("#faq-create textarea[name=questions]", "定金可以退吗\n交了定金还能退吗")
        page.fill("#faq-create textarea[name=answer]", "活动结束前可全额退")
        page.click("#faq-create button[type=submit]")
        expect(page.locator("#faq-table")).to_contain_text("交了定金还能退吗")
        page.goto(server + "/automation/moderation")
        page.fill("#try-form textarea", "兼职刷单日结300，加V：abc12345")
        page.click("#try-form button[type=submit]")
        expect(page.locator("#try-result")).to_contain_text("违规")
        page.goto(server + "/automation/draws")
        page.fill("#draw-form input[name=title]", "今晚抽奖")
        page.fill("#draw-form input[name=prizes]", "一等奖:1")
        page.once("dialog", lambda d: d.dismiss())  # asked first; "no" draws nothing
        page.click("#draw-form button[type=submit]")
        expect(page.locator("#draw-form")).to_be_visible()
        assert page.locator("#verify").count() == 0
        asked: list[str] = []
        page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
        page.click("#draw-form button[type=submit]")
        expect(page.locator("#verify")).to_contain_text("结果一致")
        assert asked and "不能重抽" in asked[0]
        expect(page.locator("#winners-table")).to_contain_text("一等奖")
        page.screenshot(path=str(tmp_path / "draw.png"), full_page=True)
        browser.close()


def test_overturn_a_removal_and_read_a_groups_timeline_on_a_phone(server: str,
                                                                  tmp_path: Path) -> None:
    """On a phone: the operator overturns an automatic removal from the decision log (a
    confirmation first) and reads the group's push timeline."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(locale="zh-CN", viewport={"width": 390, "height": 844},
                                is_mobile=True, has_touch=True)
        _log_in(page, server)
        page.goto(server + "/automation/moderation")
        row = page.locator("#decision-table tr", has_text="低息贷款")
        expect(row).to_contain_text("移出群")
        # the page fits the phone; the wide log scrolls inside its own box
        assert page.evaluate("document.documentElement.scrollWidth") <= 391
        expect(row.locator("input[name=restore]")).to_be_checked()
        messages: list[str] = []
        page.once("dialog", lambda d: (messages.append(d.message), d.accept()))
        row.locator("button", has_text="撤销判定").click()
        expect(page.locator("#decision-table tr", has_text="低息贷款")).to_contain_text("已撤销")
        assert messages and "不再计入违规" in messages[0]
        page.goto(server + "/content/timeline")
        expect(page.locator("h2")).to_contain_text("推送日程")
        expect(page.locator("#timeline-form button")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 391
        page.screenshot(path=str(tmp_path / "timeline-phone.png"), full_page=True)
        browser.close()


def test_script_playbook_timeline_and_broadcast_composer(server: str, tmp_path: Path) -> None:
    """An operator writes a script, builds a launch playbook and sees its timeline move when
    the start shifts, then composes a broadcast with a live recipient count."""
    from datetime import timedelta

    from playwright.sync_api import expect, sync_playwright

    start = (utcnow() + timedelta(days=2)).astimezone(ZoneInfo("Asia/Shanghai"))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(locale="zh-CN")
        _log_in(page, server)
        page.click("text=话术与群发")
        page.click("text=话术库")
        page.fill("#script-form input[name=name]", "开场暖场")
        page.fill("#script-form textarea[name=body]", "{group}的朋友们，{activity}一小时后开始！")
        page.click("#script-form button[type=submit]")
        expect(page.locator("#script-preview")).to_contain_text("一小时后开始")
        page.click("text=SOP 剧本")
        page.fill("#playbook-form input[name=name]", "X1 发布日")
        page.fill("#playbook-form input[name=campaign_start]", start.strftime("%Y-%m-%d 20:00"))
        page.fill("#playbook-form textarea[name=variables]", "activity=21天打卡")
        page.check("#playbook-form input[name=group_ids]")
        page.click("#playbook-form button[type=submit]")
        page.fill("#step-form input[name=at]", "T-1h")
        page.fill("#step-form input[name=max_messages_last_hour]", "20")
        page.click("#step-form button[type=submit]")
        expect(page.locator("#steps-table")).to_contain_text("T-1h")
        expect(page.locator("#timeline")).to_contain_text("19:00")
        expect(page.locator("#timeline")).to_contain_text("21天打卡一小时后开始")
        page.fill("#shift-form input[name=hours]", "1")
        page.click("#shift-form button[type=submit]")
        expect(page.locator("#campaign-start")).to_contain_text("21:00")
        expect(page.locator("#timeline")).to_contain_text("20:00")
        asked: list[str] = []  # pausing stops sends in every group: asked first, by name
        page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
        page.click("#playbook-toggle")
        expect(page.locator("#playbook-status")).to_contain_text("已暂停")
        assert asked and "暂停剧本" in asked[0] and "个群" in asked[0]
        page.click(".tabs a[href='/content/broadcasts']")
        page.fill("#broadcast-form input[name=name]", "周五直播")
        page.fill("#broadcast-form textarea[name=text]", "周五20:00直播，不见不散")
        page.check("#broadcast-form input[name=group_ids]")
        expect(page.locator("#recipient-count")).to_have_text("1")
        expect(page.locator("#needs-time")).to_be_visible()  # no time yet: it says so
        page.fill("#send-at", "明天 20:00")  # as people type it
        page.locator("#send-at").dispatch_event("change")
        expect(page.locator("#preview-when")).to_contain_text("20:00")
        expect(page.locator("#needs-time")).to_have_count(0)
        expect(page.locator("#preview-groups")).to_be_visible()
        page.click("#broadcast-send")
        expect(page.locator("#deliveries-table")).to_be_visible()
        page.goto(server + "/content/broadcasts")
        expect(page.locator("#broadcasts-table")).to_contain_text("周五直播")
        expect(page.locator("#broadcasts-table")).to_contain_text("20:00")
        page.screenshot(path=str(tmp_path / "broadcasts.png"), full_page=True)
        browser.close()


def test_import_a_chat_export_from_the_health_page(server: str, tmp_path: Path) -> None:
    """An operator uploads a MemoTrace export from the dashboard and sees what it added."""
    from playwright.sync_api import expect, sync_playwright

    from qunyun.adapters.platforms.exports import formats

    export = tmp_path / "业主群_utf8.csv"
    export.write_bytes((Path(formats.__file__).parent / "fixtures" / "memotrace__group.csv")
                       .read_bytes())
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(locale="zh-CN")
        _log_in(page, server)
        page.goto(server + "/health")
        page.click("#import-link")
        page.set_input_files("#import-form input[name=file]", str(export))
        page.click("#import-form button[type=submit]")
        expect(page.locator("#import-report")).to_contain_text("业主群_utf8.csv")
        expect(page.locator("#imp-messages")).to_have_text("7")
        expect(page.locator("#imp-joins")).to_have_text("5")
        browser.close()


def test_series_issue_enrolment_and_the_cohort_charts(server: str, tmp_path: Path) -> None:
    """Issue 7 in a browser: a series and an issue made from the forms, a member enrolled from
    the issue page, and the cohorts page drawing its ECharts charts."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        _log_in(page, server)
        number = page.request.get(server + "/api/v1/members").json()[0]["number"]
        page.goto(server + "/activities")
        page.fill("#series-form input[name=code]", "X")
        page.fill("#series-form input[name=name]", "英语打卡")
        page.click("#series-form button[type=submit]")
        page.goto(server + "/activities")
        page.select_option("#issue-form select[name=series]", "X")
        page.fill("#issue-form input[name=starts_on]", "2026-11-02")
        page.fill("#issue-form input[name=ends_on]", "2026-11-08")
        page.check("#issue-form input[name=group_ids]")
        page.click("#issue-form button[type=submit]")
        expect(page).to_have_url(re.compile(r"/activities/X1"))
        page.fill("#enrol-form input[name=number]", str(number))
        page.click("#enrol-form button[type=submit]")
        expect(page.locator("#enrolments h2")).to_contain_text("(1)")
        page.goto(server + "/activities/cohorts?series=X")
        for chart in ("chart-series-source", "chart-source", "chart-last-after"):
            expect(page.locator(f"#{chart}")).to_have_attribute("data-rendered", "1")
            assert page.locator(f"#{chart} canvas").count() == 1
        expect(page.locator("#chosen-new")).to_have_text("1")
        page.screenshot(path=str(tmp_path / "cohorts.png"), full_page=True)
        browser.close()


def test_a_member_claims_a_reward_on_a_phone(server: str, tmp_path: Path) -> None:
    """Issue 28: the campaign page draws its daily curve and invitation tree; the member
    opens the private claim link on a phone (not signed in), is told what is wrong with the
    phone number, sends the address, and the link then says it has been used."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        staff = browser.new_page(locale="zh-CN", viewport={"width": 390, "height": 844},
                                 is_mobile=True)
        _log_in(staff, server)
        staff.goto(server + "/fission/1")
        for chart in ("chart-fission-daily", "chart-fission-tree"):
            expect(staff.locator(f"#{chart}")).to_have_attribute("data-rendered", "1")
        member = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844},
                                     is_mobile=True, has_touch=True).new_page()
        member.goto(server + SEEDED["claim"])
        expect(member.locator("#claim-form")).to_be_visible()
        member.fill("#claim-name", "王小明")
        member.fill("#claim-phone", "138-abc")
        member.fill("#claim-address", "上海市徐汇区漕溪北路 1 号")
        member.locator("#claim-form button[type=submit]").tap()
        expect(member.locator("#claim-error")).to_contain_text("手机号")
        expect(member.locator("#claim-address")).to_have_value("上海市徐汇区漕溪北路 1 号")
        member.fill("#claim-phone", "13800138000")
        member.locator("#claim-form button[type=submit]").tap()
        expect(member.locator("#claim-done")).to_contain_text("保温杯")
        assert member.evaluate("document.documentElement.scrollWidth") <= 391
        member.screenshot(path=str(tmp_path / "claim-phone.png"), full_page=True)
        member.goto(server + SEEDED["claim"])
        expect(member.locator("#claim-problem")).to_contain_text("已经填写过")
        # their own page: progress, the reward, and the screenshot waiting for review
        member.goto(server + f"/fission/s/{SEEDED['token']}")
        expect(member.locator("#share-progress")).to_contain_text("你已有效邀请 2 人")
        expect(member.locator("#share-pending")).to_be_visible()
        assert member.evaluate("document.documentElement.scrollWidth") <= 391
        member.screenshot(path=str(tmp_path / "share-phone.png"), full_page=True)
        staff.goto(server + "/fission/1")
        expect(staff.locator("#fission-rewards td.claim")).to_contain_text("13800138000")
        browser.close()

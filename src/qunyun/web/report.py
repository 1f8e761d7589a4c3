"""Self-contained HTML reports: styles, ECharts and data inlined, readable offline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from qunyun.analytics.health import GroupHealth
from qunyun.i18n import percent, spoken, translate

HERE = Path(__file__).parent


def render_health_html(reports: Sequence[GroupHealth], *, language: str = "zh-CN",
                       timezone: str = "Asia/Shanghai") -> str:
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                      autoescape=select_autoescape(["html"]))
    env.globals["spoken"] = spoken
    template = env.get_template("report_health.html")
    static = HERE / "static"
    return template.render(
        reports=reports, lang=language, tz=timezone,
        t=lambda key: translate(key, language),
        percent=lambda share, digits=0: percent(share, language, digits),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        css=(static / "app.css").read_text(encoding="utf-8"),
        echarts=(static / "vendor" / "echarts.min.js").read_text(encoding="utf-8"),
        charts=(static / "charts.js").read_text(encoding="utf-8"))


def render_plan_html(report: dict[str, object], *, language: str = "zh-CN",
                     timezone: str = "Asia/Shanghai") -> str:
    """A plan's closing report for the manager, one file (styles inlined, no script):
    the goal against the outcome, every metric's target against actual, the stages with
    their totals and retros, the problem log and the budget."""
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                      autoescape=select_autoescape(["html"]))
    template = env.get_template("report_plan.html")
    return template.render(
        r=report, p=report["plan"], lang=language, tz=timezone,
        t=lambda key: translate(key, language),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        css=(HERE / "static" / "app.css").read_text(encoding="utf-8"))

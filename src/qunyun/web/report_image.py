"""A plan's closing report as a picture (PNG) or a PDF of A4 pages, for the manager who
reads on a phone or files PDFs: the goal against the outcome, every metric's target
against actual, the daily joins as a chart, the stages with their totals and retros, the
problem log and the budget.

Drawn with Pillow (already used for posters) in the CJK font the posters find, so no
browser or PDF library is needed; the PDF is the picture cut into A4 pages at 150 dpi.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from qunyun.i18n import translate
from qunyun.services.posters import font

WIDTH = 1240  # A4 at 150 dpi
PAGE = 1754
MARGIN = 64
INK, MUTED, LINE, BRAND, BAD = "#1f2329", "#646a73", "#e3e5e8", "#1a7f5a", "#c0392b"
BAR, TARGET = "#f2c14e", "#3a5fb0"
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


class _Sheet:
    """A tall white page written top to bottom; cropped to what was written."""

    def __init__(self) -> None:
        self.image = Image.new("RGB", (WIDTH, 12000), "white")
        self.draw = ImageDraw.Draw(self.image)
        self.y = MARGIN
        self.fonts = {size: font(size) for size in (20, 24, 28, 44)}

    def text(self, text: str, *, size: int = 24, color: str = INK, x: int = MARGIN,
             width: int = WIDTH - 2 * MARGIN, gap: int = 10) -> None:
        """``text`` wrapped to ``width`` (character by character: Chinese has no spaces)."""
        font = self.fonts[size]
        for line in _wrap(self.draw, text, font, width):
            if self.y > self.image.height - 200:
                return  # the page's end: the rest is in the HTML report
            self.draw.text((x, self.y), line, font=font, fill=color)
            self.y += size + gap

    def heading(self, text: str) -> None:
        self.y += 18
        self.text(text, size=28, color=BRAND)
        self.draw.line((MARGIN, self.y, WIDTH - MARGIN, self.y), fill=LINE, width=2)
        self.y += 12

    def table(self, rows: Sequence[Sequence[str]], widths: Sequence[int],
              bad: Sequence[bool] = ()) -> None:
        font = self.fonts[24]
        for i, row in enumerate(rows):
            x = MARGIN
            color = MUTED if i == 0 else (BAD if i - 1 < len(bad) and bad[i - 1] else INK)
            for j, cell in enumerate(row):
                cut = _wrap(self.draw, cell, font, widths[j] - 12)[0] if cell else ""
                if j == 0:
                    self.draw.text((x, self.y), cut, font=font, fill=color)
                else:  # numbers to the right
                    w = self.draw.textlength(cut, font=font)
                    self.draw.text((x + widths[j] - 12 - w, self.y), cut, font=font,
                                   fill=color)
                x += widths[j]
            self.y += 38
            self.draw.line((MARGIN, self.y - 6, WIDTH - MARGIN, self.y - 6), fill=LINE)

    def chart(self, labels: Sequence[str], bars: Sequence[int],
              line: Sequence[int | None], legend: tuple[str, str]) -> None:
        """Bars (actual) and a line (target) over the days."""
        height, left, bottom = 320, MARGIN + 56, self.y + 340
        tick = max(1, math.ceil(max([*bars, *(v or 0 for v in line), 1]) / 4))
        peak = 4 * tick  # whole-number grid lines: 0, tick, … 4 × tick
        right = WIDTH - MARGIN
        font = self.fonts[20]
        for k in range(5):  # grid and its values
            y = bottom - height * k / 4
            self.draw.line((left, y, right, y), fill=LINE)
            label = f"{k * tick:,}"
            self.draw.text((left - 12 - self.draw.textlength(label, font=font), y - 12),
                           label, font=font, fill=MUTED)
        n = max(1, len(bars))
        step = (right - left) / n
        every = max(1, n // 10)
        points = []
        for i, value in enumerate(bars):
            x0 = left + i * step + step * 0.2
            x1 = left + (i + 1) * step - step * 0.2
            self.draw.rectangle((x0, bottom - height * value / peak, x1, bottom), fill=BAR)
            if line[i] is not None:
                points.append((left + (i + 0.5) * step, bottom - height * (line[i] or 0) / peak))
            if i % every == 0:
                self.draw.text((left + i * step, bottom + 8), labels[i], font=font, fill=MUTED)
        if len(points) > 1:
            self.draw.line(points, fill=TARGET, width=4)
        for x, y in points:
            self.draw.ellipse((x - 5, y - 5, x + 5, y + 5), fill=TARGET)
        self.y = bottom + 44
        self.draw.rectangle((MARGIN, self.y + 4, MARGIN + 24, self.y + 24), fill=BAR)
        self.draw.text((MARGIN + 32, self.y), legend[0], font=font, fill=INK)
        self.draw.line((MARGIN + 200, self.y + 14, MARGIN + 230, self.y + 14), fill=TARGET,
                       width=4)
        self.draw.text((MARGIN + 238, self.y), legend[1], font=font, fill=INK)
        self.y += 40

    def cropped(self) -> Image.Image:
        return self.image.crop((0, 0, WIDTH, min(self.image.height, self.y + MARGIN)))


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in str(text).splitlines() or [""]:
        line = ""
        for ch in paragraph:
            if line and draw.textlength(line + ch, font=font) > width:
                lines.append(line)
                line = ""
            line += ch
        lines.append(line)
    return lines


def render_plan_image(report: Mapping[str, Any], *, language: str = "zh-CN",
                      made: datetime | None = None) -> Image.Image:
    """The closing report drawn on one tall page (the CLI, the page's downloads)."""
    def t(key: str) -> str:
        return translate(key, language)

    def word(family: str, code: str) -> str:  # a code in the reader's words
        return translate(f"plan.{family}.{code}", language)

    p = report["plan"]
    sheet = _Sheet()
    sheet.text(f"{p['name']} · {t('plan.report_title')}", size=44)
    when = (made or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    sheet.text(f"{p['starts_on']} → {p['ends_on']} · {t('plan.days_n').format(n=p['days'])}"
               f" · {t('plan.generated').format(when=when)}", color=MUTED)
    if report.get("goal_vs_outcome"):
        sheet.heading(t("plan.goal_vs_outcome"))
        goal = report["goal_vs_outcome"]
        sheet.table([["", t("plan.target"), t("plan.actual_n")]]
                    + [[word("metric", g["metric"]), str(g["planned"]), str(g["actual"])]
                       for g in goal], (560, 278, 278),
                    bad=[g["actual"] < g["planned"] for g in goal])
    sheet.heading(t("plan.vs_actual"))
    totals = report["totals"]
    sheet.table([[t("plan.metric_label"), t("plan.target"), t("plan.actual_n")]]
                + [[word("metric", m), str(v["target"]), str(v["actual"])]
                   for m, v in totals.items()], (560, 278, 278),
                bad=[v["actual"] < v["target"] for v in totals.values()])
    days = report["days"]
    sheet.y += 16
    sheet.text(t("plan.metric.joined"), size=24, color=MUTED)
    sheet.chart([d["day"][5:] for d in days], [d["joined"]["actual"] for d in days],
                [d["joined"]["target"] for d in days],
                (t("plan.chart.actual"), t("plan.chart.target")))
    if report["short"]:
        shorts = "；".join(f"{s['day']} {word('metric', s['metric'])} "
                          f"{s['actual']}/{s['target']}" for s in report["short"][:40])
        sheet.text(f"{t('plan.short_days').format(n=len(report['short']))}: {shorts}",
                   color=BAD)
    for s in report["stages"]:
        sheet.heading(f"{word('stage', s['kind'])} {s['name']}  "
                      f"{s['starts_on']} → {s['ends_on']}")
        figures = "  ".join(f"{word('metric', m)} {v['actual']}/{v['target']}"
                            for m, v in s["totals"].items() if v["target"] or v["actual"])
        if figures:
            sheet.text(figures)
        for key, label in (("retro_worked", "plan.retro_worked"),
                           ("retro_not", "plan.retro_not"),
                           ("retro_change", "plan.retro_change")):
            if s.get(key):
                sheet.text(f"{t(label)}：{s[key]}")
    if p["problems"]:
        sheet.heading(t("plan.problems"))
        for x in p["problems"]:
            status = word("problem_status", x["status"])
            sheet.text(f"[{status}] {x['issue']}" + (f" · {x['owner']}" if x["owner"] else "")
                       + (f" → {x['resolution']}" if x["resolution"] else ""))
    if p["budget"]:
        sheet.heading(t("plan.budget_title"))
        sheet.table([[t("plan.item_title"), t("plan.planned"), t("plan.actual")]]
                    + [[f"{word('budget', b['category'])} · {b['title']}",
                        f"{b['planned_fen'] / 100:.2f}", f"{b['actual_fen'] / 100:.2f}"]
                       for b in p["budget"]]
                    + [[t("plan.total"), f"{p['budget_totals']['planned_fen'] / 100:.2f}",
                        f"{p['budget_totals']['actual_fen'] / 100:.2f}"]], (660, 228, 228))
    return sheet.cropped()


def plan_png(report: Mapping[str, Any], *, language: str = "zh-CN") -> bytes:
    out = io.BytesIO()
    render_plan_image(report, language=language).save(out, "PNG", optimize=True)
    return out.getvalue()


def plan_pdf(report: Mapping[str, Any], *, language: str = "zh-CN") -> bytes:
    """The picture on A4 pages (150 dpi), one after the other."""
    image = render_plan_image(report, language=language)
    pages = []
    for top in range(0, image.height, PAGE):
        page = Image.new("RGB", (WIDTH, PAGE), "white")
        page.paste(image.crop((0, top, WIDTH, min(image.height, top + PAGE))), (0, 0))
        pages.append(page)
    out = io.BytesIO()
    pages[0].save(out, "PDF", resolution=150.0, save_all=True, append_images=pages[1:])
    return out.getvalue()


__all__ = ["plan_pdf", "plan_png", "render_plan_image"]

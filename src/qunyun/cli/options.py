"""Options commands read alike: variable values, a target of groups or members, local times,
durations and attachments; a list's sorting and paging."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from qunyun.cli.common import (
    EXIT_BAD_INPUT,
    fail,
    refused,
    say,
)
from qunyun.domain.content import ContentError, parse_assignments, parse_local_time
from qunyun.services.errors import ServiceError
from qunyun.services.listing import Listing, Page

SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="A variable value, name=value (repeatable)")]
GroupsOpt = Annotated[str | None, typer.Option("--groups", help="Target: group ids, 1,2,3")]
TagOpt = Annotated[str | None, typer.Option("--group-tag", help="Target: groups with this tag")]
SeriesOpt = Annotated[str | None, typer.Option("--series", help="Target: groups of a series")]
AllOpt = Annotated[bool, typer.Option("--all-groups", help="Target: every open group")]
SegmentOpt = Annotated[str | None, typer.Option(
    "--segment", help="Target: a saved segment or an expression (private sends)")]


def set_values(items: list[str] | None) -> dict[str, str]:
    try:
        return parse_assignments(items or [], "--set")
    except ContentError as exc:
        fail(str(exc), EXIT_BAD_INPUT)


def target_of(groups: str | None, tag: str | None, series: str | None, all_groups: bool,
            segment: str | None) -> dict[str, Any] | None:
    target = {k: v for k, v in {"groups": groups, "group_tag": tag, "series": series,
                                "all": all_groups, "segment": segment}.items() if v}
    return target or None


def local_option(text: str | None, tz: ZoneInfo, option: str) -> datetime | None:
    try:
        return parse_local_time(text or "", tz, option)
    except ContentError as exc:
        fail(str(exc), EXIT_BAD_INPUT)


_DELTA = re.compile(r"^([+-])?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")


def delta_option(text: str) -> timedelta:
    m = _DELTA.match(text.strip())
    if not m or not any(m.groups()[1:]):
        fail(say("--by {text!r}: write a shift like 1d, -2h, 1d30m", text=text), EXIT_BAD_INPUT)
    sign, d, h, mins = m.groups()
    delta = timedelta(days=int(d or 0), hours=int(h or 0), minutes=int(mins or 0))
    return -delta if sign == "-" else delta


def attachment_options(items: list[str] | None) -> list[dict[str, str]]:
    """``image:URL``, ``link:URL|title``, ``miniprogram:appid|page|title``, or JSON."""
    out: list[dict[str, str]] = []
    for item in items or []:
        if item.lstrip().startswith("{"):
            try:
                out.append(dict(json.loads(item)))
            except ValueError as exc:
                fail(say("--attach {item!r}: {exc}", item=item, exc=exc), EXIT_BAD_INPUT)
            continue
        kind, _sep, rest = item.partition(":")
        parts = rest.split("|")
        fields = {"image": ("url",), "link": ("url", "title"),
                  "miniprogram": ("appid", "page", "title")}.get(kind, ())
        out.append({"type": kind, **dict(zip(fields, parts, strict=False))})
    return out


SortOpt = Annotated[str, typer.Option("--sort", help="Sort by this column (the list's own)")]
OrderOpt = Annotated[str, typer.Option("--order", help="asc or desc (default: the column's)")]
PageOpt = Annotated[int, typer.Option("--page", help="Which page, from 1")]
PerPageOpt = Annotated[int, typer.Option("--per-page", help="Rows per page, 1-500")]


def listing_of(search: str = "", sort: str = "", order: str = "", page: int = 1,
               per_page: int = 50) -> Listing:
    """A list request from the command's options; a value out of range exits 2 naming it."""
    try:
        return Listing(search=search, sort=sort, order=order, page=page, per_page=per_page)
    except ServiceError as exc:
        fail(refused(exc), EXIT_BAD_INPUT)


def paged_json(page: Page, **more: Any) -> dict[str, Any]:
    """A list for ``--json``: its rows with the total and the page read."""
    return {**more, **page.to_json(), "rows": page.rows}


def page_line(page: Page) -> str:
    """Where this page sits in the list, in the team's words."""
    line = say("list.showing", first=page.first, last=page.last, total=page.total)
    if page.pages > 1:
        line += " · " + say("list.page_of", page=page.listing.page, pages=page.pages)
    return line

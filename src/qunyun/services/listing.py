"""Paging, sorting and search for the lists that grow (members, a group's members,
enrolments, the outbox, the audit log, moderation decisions, tasks).

One request shape (``Listing``) and one answer shape (``Page``: the rows of one page and the
total) serve every page, API route and command, so a list of 300 or 300,000 rows reads the
same everywhere and a person can always reach the oldest row. The database sorts and
counts; a page never loads more than it shows."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from qunyun.services.errors import InvalidInput

MAX_PER_PAGE = 500
MAX_PAGE = 1_000_000  # keeps the offset inside a 64-bit integer for any page size
ORDERS = ("asc", "desc")


@dataclass(frozen=True)
class Listing:
    """What a person asked of a list: words to look for, the column to sort by and its
    direction ("" for the list's natural one), and which page of how many rows."""

    search: str = ""
    sort: str = ""
    order: str = ""
    page: int = 1
    per_page: int = 50

    def __post_init__(self) -> None:
        if self.order not in ("", *ORDERS):
            raise InvalidInput("order: asc or desc, not {order!r}", order=self.order)
        if not 1 <= self.page <= MAX_PAGE:
            raise InvalidInput("page: 1 to {most}, not {page}", most=MAX_PAGE, page=self.page)
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            raise InvalidInput("rows per page: 1 to {most}, not {per_page}",
                               most=MAX_PER_PAGE, per_page=self.per_page)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


@dataclass(frozen=True)
class Columns:
    """A list's sortable columns by name (the first is the default) with the direction each
    sorts in first, the text columns a search looks in, and an optional number column a
    search of digits matches exactly (member numbers)."""

    sortable: Mapping[str, tuple[ColumnElement[Any], str]]
    searched: Sequence[ColumnElement[Any]] = ()
    number: ColumnElement[Any] | None = None
    tiebreak: ColumnElement[Any] | None = None  # an ordering clause: ``table.c.id.desc()``

    @property
    def default(self) -> str:
        return next(iter(self.sortable))


@dataclass(frozen=True)
class Page:
    """One page of a list, the total across all pages, and the sort in effect."""

    rows: list[dict[str, Any]]
    total: int
    listing: Listing
    sort: str
    order: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.listing.per_page))

    @property
    def first(self) -> int:
        """The 1-based position of the page's first row (0 on an empty list)."""
        return self.listing.offset + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.listing.offset + len(self.rows)

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "page": self.listing.page,
                "per_page": self.listing.per_page, "pages": self.pages, "sort": self.sort,
                "order": self.order}


def fetch(conn: Connection, stmt: Select[Any], listing: Listing, columns: Columns,
          shape: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None) -> Page:
    """Search, count, sort and cut ``stmt`` as ``listing`` asks; ``shape`` adds what the rows
    need for the one page (context from other tables, converted amounts)."""
    sort = listing.sort or columns.default
    if sort not in columns.sortable:
        raise InvalidInput("sort: one of {choices}, not {sort!r}",
                           choices=", ".join(columns.sortable), sort=sort)
    words = listing.search.strip()
    if words:
        tests: list[ColumnElement[bool]] = [
            c.contains(words, autoescape=True) for c in columns.searched]
        if columns.number is not None and words.isdigit() and len(words) <= 18:
            tests.append(columns.number == int(words))
        if tests:
            stmt = stmt.where(or_(*tests))
    total = int(conn.execute(
        select(func.count()).select_from(stmt.order_by(None).subquery())).scalar_one())
    column, natural = columns.sortable[sort]
    order = listing.order or natural
    key = column.desc() if order == "desc" else column.asc()
    ordering: list[ColumnElement[Any]] = [key.nulls_last()]
    if columns.tiebreak is not None:
        ordering.append(columns.tiebreak)
    rows = [dict(r) for r in conn.execute(
        stmt.order_by(None).order_by(*ordering).limit(listing.per_page)
        .offset(listing.offset)).mappings()]
    return Page(shape(rows) if shape else rows, total, listing, sort, order)

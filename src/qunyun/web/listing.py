"""A list's paging, sorting and search read from the query string, for pages and the API.

Pages and API routes take the same parameters (``q``, ``sort``, ``order``, ``page``,
``per_page``); the API answers with the page's rows and the total in ``X-Total-Count`` (the
body stays a plain list), pages show the total, sortable headings and a pager."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.datastructures import URL

from qunyun.services.listing import Listing, Page


def listing_query(q: str = "", sort: str = "", order: str = "", page: int = 1,
                  per_page: int = 50) -> Listing:
    """The request's listing (out-of-range values are refused with a 422 naming them)."""
    return Listing(search=q, sort=sort, order=order, page=page, per_page=per_page)


ListingQuery = Annotated[Listing, Depends(listing_query)]


def answer(response: Response, page: Page) -> list[dict[str, Any]]:
    """The page's rows for an API body, with the paging facts as headers."""
    response.headers["X-Total-Count"] = str(page.total)
    response.headers["X-Page"] = str(page.listing.page)
    response.headers["X-Per-Page"] = str(page.listing.per_page)
    return page.rows


def list_url(request: Request, **changes: Any) -> str:
    """This page's address with some query parameters changed (empty values dropped), so
    sorting keeps the search and filters and a new search starts on page 1."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value in ("", None):
            params.pop(key, None)
        else:
            params[key] = str(value)
    return str(URL(request.url.path).include_query_params(**params))

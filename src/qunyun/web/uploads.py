"""A person's own upload link (a fission participant's share screenshot, an applicant's
share-to-join screenshot): no login, the token is the key. The page shows where things
stand; a posted picture is stored by the feature's service, a bad one named on the page
(400) with nothing stored, a bad token a page that says so."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import Connection

from qunyun.services.errors import InvalidInput, ServiceError
from qunyun.web.deps import check_csrf, csrf_token, render
from qunyun.web.forms import form_picture

# the feature's view of the token's page, and how it stores a picture for the token
ReadForm = Callable[[Connection, str], dict[str, Any]]
Store = Callable[[Connection, str, bytes, Path], Any]


def upload_page(request: Request, runtime: Any, *, template: str, token: str,
                read: ReadForm) -> Response:
    csrf_token(request)
    try:
        with runtime.uow.read() as conn:
            form = read(conn, token)
    except ServiceError as exc:
        return render(request, template, {"problem": exc}, status_code=exc.status_code)
    return render(request, template, {"form": form, "token": token})


async def upload_post(request: Request, runtime: Any, *, template: str, token: str,
                      read: ReadForm, store: Store) -> Response:
    await check_csrf(request)
    try:
        data = await form_picture(request)
        with runtime.uow.write() as conn:
            store(conn, token, data, runtime.settings.pictures_dir)
            form = read(conn, token)
    except InvalidInput as exc:
        with runtime.uow.read() as conn:
            form = read(conn, token)
        return render(request, template, {"form": form, "token": token, "error": exc},
                      status_code=400)
    except ServiceError as exc:
        return render(request, template, {"problem": exc}, status_code=exc.status_code)
    return render(request, template, {"form": form, "token": token, "sent": True})

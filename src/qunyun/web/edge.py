"""Hostile input stopped at the edge, with a 422 naming the field, before any service runs.

What the databases cannot store, or store differently, must never reach them: a lone UTF-16
surrogate stored in a JSON column made every later listing answer 500; NUL, a number beyond
64 bits or NaN went in on SQLite and failed with a 500 on PostgreSQL; a JSON body nested
100,000 deep overflowed the parser's recursion. Every request's path and query values, its
JSON body and its URL-encoded form are checked here (a multipart upload's file is not: file
readers check their own content and name file and line).
"""

from __future__ import annotations

import json
import math
import types
from typing import Any, Union, get_args, get_origin

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qunyun.domain import storable
from qunyun.services.errors import InvalidInput

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
MAX_DEPTH = 32
MAX_STRING = 100_000  # characters; fields with their own limits check those in services
JSON_TYPES = ("application/json", "application/merge-patch+json")


def text_problem(value: str) -> str | None:
    """Why a text cannot be stored as it is (or is beyond any field's size), or None."""
    if len(value) > MAX_STRING:
        return f"longer than {MAX_STRING:,} characters"
    return storable.text_problem(value)


def _int_problem(value: str) -> str | None:
    """For a parameter declared as a whole number: beyond 64 bits, or digits that are not
    ASCII (Python's int() reads ``١٢٣``; the databases would get a surprise)."""
    stripped = value.strip()
    body = stripped[1:] if stripped[:1] in "+-" else stripped
    if body and body.isdigit() and not body.isascii():
        return "digits must be 0–9"
    if body.isascii() and body.isdigit() and len(body) > 18:
        number = int(stripped)
        if not INT64_MIN <= number <= INT64_MAX:
            return "a number beyond 64 bits"
    return None


def _is_int(annotation: Any) -> bool:
    if annotation is int:
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        return int in get_args(annotation)
    return False


def _int_params(request: Request) -> frozenset[str]:
    """Names of the route's parameters (path, query, form) declared as whole numbers, worked
    out once per route and kept on it (a module-level table keyed by ``id(route)`` could
    hand a new app's route the answer of a collected one)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return frozenset()
    known: frozenset[str] | None = getattr(route, "qunyun_int_params", None)
    if known is None:
        names: set[str] = set()
        todo = [dependant]
        while todo:
            current = todo.pop()
            todo.extend(current.dependencies)
            for field in (*current.path_params, *current.query_params, *current.body_params):
                if _is_int(field.field_info.annotation):
                    names.add(field.alias)
        known = frozenset(names)
        route.qunyun_int_params = known  # type: ignore[union-attr]
    return known


def check_value(value: Any, where: str, depth: int = 0) -> None:
    """Walk a decoded JSON value; raise ``InvalidInput`` naming the first bad field."""
    if depth > MAX_DEPTH:
        raise InvalidInput("{where}: nested more than {n} levels deep", where=where,
                           n=MAX_DEPTH)
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            raise InvalidInput("{where}: {problem}", where=where, problem=problem)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise InvalidInput("{where}: a number beyond 64 bits", where=where)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput("{where}: not a finite number", where=where)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_value(key, f"{where} (a key)", depth + 1)
            check_value(item, f"{where}.{key}" if where else str(key), depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_value(item, f"{where}[{i}]", depth + 1)


def parse_json(raw: bytes) -> Any:
    """JSON with bounded nesting (checked before parsing, so a 100,000-deep body never
    reaches the recursive parser) in UTF-8; ``check_value`` then refuses NaN and Infinity."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > MAX_DEPTH:
                raise InvalidInput("body: nested more than {n} levels deep", n=MAX_DEPTH)
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("body: not UTF-8 (byte {start})", start=exc.start) from None
    try:
        # NaN and Infinity are read (Python's json takes them) so the walk names the field
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput("body: not valid JSON ({msg} at line {line} column {column})",
                           msg=exc.msg, line=exc.lineno, column=exc.colno) from None


class JsonGuard:
    """ASGI middleware: a JSON body is checked before the framework parses it (its parser
    recursed into a 100,000-deep body and answered a bare 400); refused with a 422 naming
    the field. Sits inside the body-size limit, so at most that much is held."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        content_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
        if content_type.split(";")[0].strip().lower() not in JSON_TYPES:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        try:
            if raw.strip():
                check_value(parse_json(raw), "")
        except InvalidInput as exc:
            body = json.dumps({"error": str(exc)}, ensure_ascii=False).encode()
            await send({"type": "http.response.start", "status": 422,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        await self.app(scope, replay, send)


async def check_request(request: Request) -> None:
    """App-wide dependency: path and query values and URL-encoded forms (JSON bodies are
    checked by ``JsonGuard`` before they are parsed)."""
    ints = _int_params(request)

    def refuse(name: str, value: str) -> None:
        problem = text_problem(name) or text_problem(value) or (
            _int_problem(value) if name in ints else None)
        if problem:
            raise InvalidInput("{name}: {problem}", name=name, problem=problem)

    for name, raw_value in request.path_params.items():
        if isinstance(raw_value, str):
            refuse(name, raw_value)
        elif isinstance(raw_value, int) and not INT64_MIN <= raw_value <= INT64_MAX:
            raise InvalidInput("{name}: a number beyond 64 bits", name=name)  # a {name:int} path
    for name, value in request.query_params.multi_items():
        refuse(name, value)
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        form = await request.form()
        for name, item in form.multi_items():
            if isinstance(item, str):
                refuse(name, item)


# Scripts and styles come from our own /static (pages still use inline handlers, hence
# 'unsafe-inline'); images may be WeCom's QR codes; no page may be framed.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
       "style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'self'; form-action 'self'")


class SecurityHeaders:
    """ASGI middleware adding the browser's defences to every answer (HSTS behind HTTPS)."""

    def __init__(self, app: ASGIApp, https: bool = False) -> None:
        self.app = app
        headers = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                   (b"referrer-policy", b"same-origin"),
                   (b"content-security-policy", CSP.encode())]
        if https:
            headers.append((b"strict-transport-security", b"max-age=31536000"))
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *(h for h in self.headers if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)

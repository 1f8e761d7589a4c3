"""Hostile input through every API route the OpenAPI document lists, generated from its
schemas: lone surrogates, NUL, numbers beyond 64 bits, NaN, Unicode digits, bodies nested
100,000 deep, over-long strings. Never a 500, nothing stored by a refused request, and no
listing poisoned afterwards (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from qunyun.services import users
from qunyun.services.users import SYSTEM
from tests.dbhelpers import snapshot

BIG = str(2 ** 64)
HOSTILE_TEXT = {"surrogate": "a\ud800b", "nul": "a\x00b"}
# raw JSON fragments json.dumps cannot write
RAW_NUMBERS = {"nan": "NaN", "infinity": "Infinity", "huge": BIG, "negative_huge": "-" + BIG}


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return _resolve(spec, options[0]) if options else {}
    return schema


def _example(spec: dict[str, Any], schema: dict[str, Any], depth: int = 0) -> Any:
    schema = _resolve(spec, schema)
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = schema.get("required", [])
        return {name: _example(spec, props[name], depth + 1) for name in required
                if depth < 4}
    if kind == "array":
        return []
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    return "x"


def _fields(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, str]:
    """Top-level property → its JSON type."""
    schema = _resolve(spec, schema)
    return {name: _resolve(spec, prop).get("type", "string")
            for name, prop in schema.get("properties", {}).items()}


def _routes(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method, path, op


def _fill(path: str, value: str = "1") -> str:
    return re.sub(r"\{[^}]+\}", value, path)


@pytest.fixture
def admin(client: TestClient, conn: Connection, staff: dict[str, str]) -> dict[str, str]:
    return {"Authorization": "Bearer " + users.do_create_api_token(
        conn, actor=SYSTEM, username="admin1")}


def test_every_json_body_refuses_hostile_values_naming_the_field(
        client: TestClient, conn: Connection, admin: dict[str, str]) -> None:
    spec = client.get("/api/v1/openapi.json", headers=admin).json()
    before = snapshot(conn)
    tried = 0
    for method, path, op in _routes(spec):
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is None:
            continue
        base = _example(spec, body["schema"])
        fields = _fields(spec, body["schema"])
        cases: list[tuple[str, str, str]] = []  # (field, what, raw body)
        for name, kind in fields.items():
            if kind == "string":
                for what, text in HOSTILE_TEXT.items():
                    cases.append((name, what, json.dumps({**base, name: text})))
            elif kind in ("integer", "number"):
                for what, raw in RAW_NUMBERS.items():
                    cases.append((name, what, json.dumps({**base, name: 0}).replace(
                        f'"{name}": 0', f'"{name}": {raw}')))
        cases.append(("body", "deep", "[" * 100_000 + "]" * 100_000))
        for name, what, raw in cases:
            tried += 1
            answer = client.request(method, _fill(path), headers={
                **admin, "content-type": "application/json"}, content=raw.encode())
            assert answer.status_code == 422, (method, path, name, what, answer.text)
            assert answer.json()["error"].startswith(name), (method, path, what,
                                                             answer.text)
    assert tried > 150
    assert snapshot(conn) == before


def test_path_and_query_numbers_beyond_64_bits_and_odd_digits(
        client: TestClient, conn: Connection, admin: dict[str, str]) -> None:
    spec = client.get("/api/v1/openapi.json", headers=admin).json()
    before = snapshot(conn)
    tried = 0
    for method, path, op in _routes(spec):
        ints = [p["name"] for p in op.get("parameters", [])
                if _resolve(spec, p.get("schema", {})).get("type") == "integer"]
        for value in (BIG, "١٢٣", "-" + BIG):
            for name in ints:
                params = {p["name"]: "1" for p in op.get("parameters", [])
                          if p["in"] == "query" and p.get("required")}
                target = path
                if "{" + name + "}" in path:
                    target = path.replace("{" + name + "}", value)
                else:
                    params[name] = value
                tried += 1
                answer = client.request(method, _fill(target), params=params, headers=admin,
                                        json={} if method != "get" else None)
                assert 400 <= answer.status_code < 500, (method, path, name, value,
                                                         answer.text)
    assert tried > 40
    assert snapshot(conn) == before


def test_over_long_null_and_misshapen_values_never_answer_500(
        client: TestClient, conn: Connection, admin: dict[str, str]) -> None:
    """Columns have lengths PostgreSQL enforces and SQLite does not: 5,000 characters in
    every string field is a 4xx or is stored, on both; so is null or a list or an object in
    any field; and every listing still answers afterwards."""
    spec = client.get("/api/v1/openapi.json", headers=admin).json()
    for method, path, op in _routes(spec):
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is None or method == "delete":
            continue
        base = _example(spec, body["schema"])
        for name, kind in _fields(spec, body["schema"]).items():
            values: list[Any] = [None, [], {}]  # null (a PATCH's "clear this"), wrong shapes
            if kind == "string":
                values.append("长" * 5000)
            for value in values:
                answer = client.request(method, _fill(path), headers=admin,
                                        json={**base, name: value})
                assert answer.status_code < 500, (method, path, name, answer.text[:300])
    for method, path, op in _routes(spec):
        if method == "get" and "{" not in path:
            required = {p["name"]: "1" for p in op.get("parameters", []) if p.get("required")}
            answer = client.get(path, params=required, headers=admin)
            assert answer.status_code < 500, (path, answer.text[:300])


def test_chunked_bodies_over_the_limit_are_413_whatever_parses_them(
        client: TestClient, conn: Connection, staff: dict[str, str]) -> None:
    """No declared length: the limit is found while reading. Frameworks that parse a body
    catch what a reader raises and answered a form's 3 MB 400; every kind is a 413 now."""
    from tests.web.conftest import login

    csrf = login(client, staff["admin"])
    before = snapshot(conn)
    big = b"x" * 3_000_000
    cases = {
        "json": ("/api/v1/ingest/sandbox", "application/json",
                 [b'{"type": "message", "text": "', big, b'"}']),
        "form": ("/users", "application/x-www-form-urlencoded",
                 [b"csrf_token=" + csrf.encode() + b"&username=", big]),
        "csv": ("/api/v1/faqs/import", "text/csv", [big]),
        "multipart": ("/members/attributes/import", "multipart/form-data; boundary=b",
                      [b'--b\r\nContent-Disposition: form-data; name="file"; '
                       b'filename="a.csv"\r\n\r\n', big, b"\r\n--b--\r\n"]),
    }
    for what, (path, kind, parts) in cases.items():
        answer = client.post(path, content=iter(parts),
                             headers={"content-type": kind, "x-csrf-token": csrf})
        assert answer.status_code == 413, (what, answer.status_code, answer.text[:200])
        assert answer.json() == {"error": "request body too large"}
    assert snapshot(conn) == before

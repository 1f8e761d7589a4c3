"""Schema-driven fuzzing of the JSON API with Hypothesis: each route's example body (from
the OpenAPI document) with one field replaced by a generated value — any JSON, including
text with NUL, lone surrogates and emoji, numbers beyond 64 bits, NaN, deep lists. The
answer is never a 5xx, and a refused request stores nothing.

``make test`` runs a few examples per route (``tests/web/test_fuzz.py``); the bench script
``bench/fuzz_bench.py`` runs many more."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.web.test_hostile_input import _example, _fields, _routes

TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
SCALARS = st.one_of(st.none(), st.booleans(), TEXT,
                    st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
                    st.floats(allow_nan=True, allow_infinity=True))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)


def dumps(value: Any) -> str:
    """JSON as a hostile client writes it: lone surrogates as escapes, NaN as NaN."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True)


def json_targets(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], list[str]]]:
    """(method, path with ids filled, example body, its top-level fields) per JSON route."""
    out = []
    for method, path, op in _routes(spec):
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is None:
            continue
        fields = list(_fields(spec, body["schema"])) or ["_"]
        out.append((method, re.sub(r"\{[^}]+\}", "1", path), _example(spec, body["schema"]),
                    fields))
    return out


def fuzz_route(send: Callable[[str, str, bytes], int], snapshot: Callable[[], Any],
               method: str, path: str, base: dict[str, Any], fields: list[str],
               examples: int, seed: int = 24) -> int:
    """Run ``examples`` generated bodies against one route; returns how many ran."""
    ran = 0

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(field=st.sampled_from(fields), value=VALUES)
    def one(field: str, value: Any) -> None:
        nonlocal ran
        before = snapshot()
        body = dumps({**base, field: value}).encode()
        status = send(method, path, body)
        assert status < 500, (method, path, field, body[:300], status)
        if status >= 400:
            assert snapshot() == before, (method, path, field, body[:300])
        ran += 1

    one()
    return ran





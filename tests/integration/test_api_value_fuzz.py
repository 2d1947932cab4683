"""Hypothesis against the create and list routes of the real app, on SQLite, MariaDB and
PostgreSQL (issue 10, finding 3): whatever unicode, numbers and nesting a body holds, the answer
is never a 5xx; a created task gives back exactly the payload and metadata sent; a refused
request stores nothing.

The schema fuzzer (``test_api_fuzz.py``) only sends what the OpenAPI schema describes, which
has no NaN, lone surrogates or 300-deep documents; these strategies aim at exactly those.
"""

from __future__ import annotations

import asyncio
import json
import os
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.test_api import Api, serve
from tests.support.databases import BACKENDS, fresh_database

EXAMPLES = int(os.environ.get("VALUE_FUZZ_EXAMPLES", "150"))
T = "/api/v1/tasks"

# Every code point, lone surrogates included (Hypothesis leaves them out by default).
any_char = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
text = st.text(any_char, max_size=12) | st.sampled_from(["", "\x00", "\ud800", "a\udfffb", "é"])
numbers = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1])
    | st.floats(allow_nan=True, allow_infinity=True)
)
scalars = st.none() | st.booleans() | numbers | text
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


payloads = st.dictionaries(text, documents | st.integers(1, 300).map(nested), max_size=5)
times = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
    datetime.isoformat
) | (st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
).map(datetime.isoformat)) | (text.filter(lambda s: "\x00" not in s))
bodies = st.fixed_dictionaries(
    {"task_type": st.just("echo"), "payload": payloads},
    optional={
        "metadata": st.dictionaries(text, text, max_size=4),
        "idempotency_key": text,
        "run_at": times,
        "callback_url": text.map(lambda s: "http://x.example/" + s),
    },
)
query_text = st.text(st.characters(codec="utf-8"), max_size=30)
queries = st.fixed_dictionaries({}, optional={
    "cursor": query_text | st.sampled_from(["\x00", "01" * 13, "Z" * 26, "0" * 26]),
    "type": query_text,
    "status": query_text | st.sampled_from(["PENDING", "SUCCESS"]),
    "created_from": times.filter(lambda s: "\ud800" not in s and "\udfff" not in s),
    "created_to": query_text,
    "limit": st.integers(-5, 2000).map(str),
})


def encodable(params: dict[str, str]) -> bool:
    return all(not any(0xD800 <= ord(c) <= 0xDFFF for c in v) for v in params.values())


async def check_create(api: Api, body: dict[str, Any]) -> None:
    raw = json.dumps(body, allow_nan=True)  # ensure_ascii: surrogates travel as \\udXXX escapes
    sent = json.loads(raw)
    before = await api.stored()
    response = await api.http.post(T, content=raw, headers={"content-type": "application/json"})
    assert response.status_code < 500, (raw[:500], response.text[:500])
    if response.status_code in (200, 201):
        got = (await api.http.get(f"{T}/{response.json()['task_id']}")).json()
        if response.status_code == 201:
            assert got["payload"] == sent["payload"], raw[:500]
            assert got["metadata"] == sent.get("metadata", {}), raw[:500]
    else:
        assert await api.stored() == before, (raw[:500], response.text[:500])


async def check_list(api: Api, params: dict[str, str]) -> None:
    response = await api.http.get(T, params=params)
    assert response.status_code < 500, (params, response.text[:500])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", BACKENDS)
def test_create_and_list_never_answer_5xx(backend: str, tmp_path: Path) -> None:
    with asyncio.Runner() as runner:
        stack = AsyncExitStack()
        url = runner.run(stack.enter_async_context(fresh_database(backend, tmp_path)))
        api = runner.run(stack.enter_async_context(serve(url)))
        runner.run(api.created(task_type="echo", run_at=(
            datetime.now(UTC) + timedelta(hours=1)).isoformat()))
        fuzz = settings(max_examples=EXAMPLES, deadline=None, database=None,
                        suppress_health_check=list(HealthCheck))
        try:
            @fuzz
            @given(body=bodies)
            def creates(body: dict[str, Any]) -> None:
                runner.run(check_create(api, body))

            @fuzz
            @given(params=queries.filter(encodable))
            def lists(params: dict[str, str]) -> None:
                runner.run(check_list(api, params))

            creates()
            lists()
        finally:
            runner.run(stack.aclose())

"""Hostile input through the real app on SQLite, MariaDB and PostgreSQL (issue 10, findings 2
and 3): data comes back as it was sent or is refused with a 4xx naming the field, nothing is
stored for a refused request, and one poison request among many concurrent creates fails alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.test_api import Api, error_of, running, serve
from tests.support.databases import BACKENDS, fresh_database

T = "/api/v1/tasks"


@pytest.fixture(params=BACKENDS)
async def db_api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    async with fresh_database(request.param, tmp_path) as url, serve(url) as built:
        yield built


async def post_raw(api: Api, body: str) -> tuple[int, str]:
    response = await api.http.post(T, content=body, headers={"content-type": "application/json"})
    return response.status_code, response.text


# Each is valid JSON as Python reads it, and each used to be stored changed (null) or answer 500.
HOSTILE = [
    ("NaN", '{"task_type": "echo", "payload": {"n": NaN}}', "payload.n"),
    ("Infinity", '{"task_type": "echo", "payload": {"n": -Infinity}}', "payload.n"),
    ("1e400", '{"task_type": "echo", "payload": {"n": [1, 1e400]}}', "payload.n[1]"),
    ("int over 64 bits", '{"task_type": "echo", "payload": {"n": 36893488147419103232}}',
     "payload.n"),
    ("lone surrogate in a payload string", '{"task_type": "echo", "payload": {"s": "\\ud800"}}',
     "payload.s"),
    ("lone surrogate in a payload key", '{"task_type": "echo", "payload": {"\\udc00": 1}}',
     "payload key"),
    ("lone surrogate in metadata", '{"task_type": "echo", "metadata": {"k": "a\\ud83d"}}',
     "metadata.k"),
    ("300 deep", '{"task_type": "echo", "payload": {"d": ' + "[" * 300 + "]" * 300 + "}}",
     "nested deeper"),
    ("NUL in an idempotency key", '{"task_type": "echo", "idempotency_key": "a\\u0000b"}',
     "idempotency_key"),
    ("lone surrogate in an idempotency key",
     '{"task_type": "echo", "idempotency_key": "a\\udfffb"}', "idempotency_key"),
    ("NUL in a callback url",
     '{"task_type": "echo", "callback_url": "http://a.example/\\u0000"}', "callback_url"),
    ("70,000-character metadata value",
     '{"task_type": "echo", "metadata": {"k": "' + "m" * 70_000 + '"}}', "metadata"),
]


@pytest.mark.parametrize(("name", "body", "field"), HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_hostile_values_are_refused_naming_the_field(
    db_api: Api, name: str, body: str, field: str
) -> None:
    status, text = await post_raw(db_api, body)
    assert status == 422, f"{name}: {status} {text[:300]}"
    assert field in text, f"{name}: {field!r} not in {text[:300]}"
    assert await db_api.stored() == 0


async def test_values_at_the_edges_round_trip_exactly(db_api: Api) -> None:
    payload = {
        "max": 2**64 - 1, "min": -(2**63), "tiny": 5e-324, "big": 1.7976931348623157e308,
        "neg_zero": -0.0, "text": "\x00\u2028\U0001f600 é", "deep": [[[[[[["x"]]]]]]],
    }
    sent = await db_api.created(task_type="echo", payload=payload,
                                metadata={"nul": "a\x00b", "emoji": "\U0001f600"})
    back = await db_api.get(sent["task_id"])
    assert back["payload"] == payload
    assert back["metadata"] == {"nul": "a\x00b", "emoji": "\U0001f600"}


async def test_one_poison_request_fails_alone_among_concurrent_creates(db_api: Api) -> None:
    """240 concurrent creates, one of each poison kind among them: every innocent one is
    created, every poison one is refused, and exactly the innocent ones are stored."""
    poisons = [body for _, body, _ in HOSTILE]
    innocent = 240
    calls = [db_api.create(task_type="echo", payload={"i": i}) for i in range(innocent)]
    for k, body in enumerate(poisons):
        calls.insert(k * 20, post_raw(db_api, body))  # type: ignore[arg-type]
    answers = await asyncio.gather(*calls)
    codes = [a[0] if isinstance(a, tuple) else a.status_code for a in answers]
    assert codes.count(201) == innocent, codes
    assert codes.count(422) == len(poisons)
    assert await db_api.stored() == innocent


async def test_idempotency_keys_differ_by_case_space_and_accent(db_api: Api) -> None:
    keys = ["Order-1", "order-1", "order-1 ", "ordér-1"]
    first = [await db_api.create(task_type="echo", idempotency_key=k) for k in keys]
    assert [r.status_code for r in first] == [201] * len(keys), [r.text for r in first]
    again = [await db_api.create(task_type="echo", idempotency_key=k) for k in keys]
    assert [r.status_code for r in again] == [200] * len(keys)
    assert [r.json()["task_id"] for r in again] == [r.json()["task_id"] for r in first]
    assert await db_api.stored() == len(keys)


async def test_a_key_twice_in_a_batch_keeps_the_first_like_two_requests(db_api: Api) -> None:
    response = await db_api.http.post(f"{T}/batch", json={"tasks": [
        {"task_type": "echo", "payload": {"n": 1}, "idempotency_key": "k"},
        {"task_type": "echo", "payload": {"n": 2}, "idempotency_key": "k"},
    ]})
    assert response.status_code == 201, response.text
    first, second = response.json()["tasks"]
    assert first["created"] is True and second["created"] is False
    assert second["task_id"] == first["task_id"]
    assert (await db_api.get(first["task_id"]))["payload"] == {"n": 1}
    assert await db_api.stored() == 1


@pytest.fixture
def far_time_zone() -> Iterator[None]:
    """The server's local time far from UTC, so a naive time read as local is hours off."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TZ", "Pacific/Kiritimati")  # UTC+14
    time.tzset()
    try:
        yield
    finally:
        mp.undo()
        time.tzset()


async def test_naive_times_mean_utc_everywhere(db_api: Api, far_time_zone: None) -> None:
    task = await db_api.created(task_type="echo")
    created = datetime.fromisoformat(task["created_at"]).astimezone(UTC).replace(tzinfo=None)
    around = {"created_from": (created - timedelta(minutes=5)).isoformat(),
              "created_to": (created + timedelta(minutes=5)).isoformat()}
    page = (await db_api.http.get(T, params=around)).json()
    assert [t["task_id"] for t in page["tasks"]] == [task["task_id"]]
    later = (datetime.now(UTC) + timedelta(hours=2)).replace(tzinfo=None)
    delayed = await db_api.created(task_type="echo", run_at=later.isoformat())
    run_at = datetime.fromisoformat(delayed["run_at"])
    assert abs(run_at - later.replace(tzinfo=UTC)) < timedelta(seconds=1)


@pytest.mark.parametrize(("query", "name"), [
    ("created_from=0001-01-01T00:00:00", "created_from"),
    ("created_to=0001-01-01T00:00:00%2B05:00", "created_to"),
    ("cursor=abc%00", "cursor"),
    ("cursor=not-a-cursor", "cursor"),
    ("cursor=%ED%A0%80", "cursor"),  # a surrogate's UTF-8 form: not UTF-8 at all
])
async def test_bad_list_parameters_are_4xx_naming_them(db_api: Api, query: str, name: str) -> None:
    response = await db_api.http.get(f"{T}?{query}")
    assert 400 <= response.status_code < 500, response.text
    assert name in response.text


async def test_a_nul_in_a_task_id_is_404(db_api: Api) -> None:
    for path in (f"{T}/abc%00def", f"{T}/abc%00def/logs"):
        assert "abc" in error_of(await db_api.http.get(path), 404)
    assert "abc" in error_of(await db_api.http.post(f"{T}/abc%00def/cancel"), 404)


async def test_an_oversized_result_fails_its_task_and_the_worker_goes_on(tmp_path: Path) -> None:
    """Before, a result the store could not take failed the finisher's batch again and again,
    and the worker's next tasks never finished."""
    for backend in BACKENDS:
        (tmp_path / backend).mkdir()
        async with fresh_database(backend, tmp_path / backend) as url, serve(
            url, max_result_bytes=1024
        ) as api, running(api):
            big = await api.created(task_type="echo", payload={"blob": "r" * 2000})
            after = [await api.created(task_type="echo", payload={"i": i}) for i in range(10)]
            failed = await api.wait_final(big["task_id"])
            assert failed["status"] == "FAILED" and failed["result"] is None
            assert "max_result_bytes" in failed["error"] and "1024" in failed["error"]
            assert failed["retry_count"] == 0  # not retried: the same result would come back
            for task in after:
                assert (await api.wait_final(task["task_id"]))["status"] == "SUCCESS"


@pytest.mark.parametrize("raw", ['{"x": NaN}', '{"x": 36893488147419103232}', '{"\\ud800": 1}'])
async def test_hostile_executor_config_is_422(db_api: Api, raw: str) -> None:
    body = '{"executor": "python", "executor_config": ' + raw + "}"
    response = await db_api.http.put(
        "/api/v1/task-configs/odd", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert "executor_config" in response.text
    assert (await db_api.http.get("/api/v1/task-configs/odd")).status_code == 404

"""The create routes' own serving (``api.lean``) answers as FastAPI's would: the same JSON for
a created task as ``TaskOut``, and the same validation errors for a body FastAPI would refuse."""

from __future__ import annotations

import json

import orjson
import pytest
from fastapi.exceptions import RequestValidationError

from conveyor.api.errors import _describe_validation
from conveyor.api.lean import parsed
from conveyor.api.schemas import TaskOut, created_json
from conveyor.models import Priority, Task, TaskStatus

BARE = Task(id="01JAAAAAAAAAAAAAAAAAAAAAAA", task_type="echo", priority=Priority.NORMAL,
            payload={}, status=TaskStatus.PENDING, max_retries=3, timeout=30,
            created_at=1_700_000_000.25, run_at=1_700_000_000.25)
FULL = Task(id="01JBBBBBBBBBBBBBBBBBBBBBBB", task_type="resize", priority=Priority.HIGH,
            payload={"x": [1, 2.5, "é"], "n": None}, status=TaskStatus.WAITING, max_retries=0,
            timeout=12.5, created_at=1_700_000_001.0, run_at=1_700_000_100.0,
            metadata={"traceparent": "00-abc-def-01"}, idempotency_key="k-1", tenant="acme",
            wait_deadline=1_700_003_600.0, pinned_worker="w-1", attempt=1)


@pytest.mark.parametrize("task", [BARE, FULL])
@pytest.mark.parametrize("created", [True, False])
def test_a_created_task_is_answered_as_task_out_would_be(task: Task, created: bool) -> None:
    model = TaskOut.of(task, created=created).model_dump(mode="json")
    lean = orjson.loads(orjson.dumps(created_json(task, created)))
    assert lean == model
    assert list(lean) == list(model)  # the same order of fields, too
    assert isinstance(lean["timeout_seconds"], float)


def describe(raw: bytes) -> str:
    with pytest.raises(RequestValidationError) as caught:
        parsed(raw)
    return _describe_validation(caught.value)


def test_bodies_fastapi_refuses_are_refused_with_its_words() -> None:
    assert describe(b"") == "body: Field required"
    try:
        json.loads(b'{"task_type": ')
    except json.JSONDecodeError as exc:
        assert describe(b'{"task_type": ') == f"the body is not valid JSON: {exc.msg}"


def test_documents_are_read_as_the_standard_library_reads_them() -> None:
    assert parsed(b'{"task_type": "echo", "payload": {"x": NaN}}')["payload"]["x"] != 0
    assert parsed(b'{"n": 123456789012345678901234567890}')["n"] == 123456789012345678901234567890
    assert parsed(b'{"task_type": "echo"}') == {"task_type": "echo"}

"""The pure task model: the state machine of docs/design.md §2, priorities and task-type rules."""

from __future__ import annotations

import itertools

import pytest

from conveyor.errors import Conflict, IllegalTransition, ValidationError
from conveyor.models import (
    ALLOWED_MOVES,
    FINAL_STATUSES,
    Priority,
    QueueItem,
    TaskStatus,
    check_move,
    check_task_type,
)
from conveyor.tenants import DEFAULT_TENANT

S = TaskStatus

# docs/design.md §2, written out by hand so a change to ALLOWED_MOVES cannot pass unnoticed.
DESIGN_EDGES = {
    (S.PENDING, S.PROCESSING),
    (S.PENDING, S.CANCELLED),
    (S.PROCESSING, S.SUCCESS),
    (S.PROCESSING, S.FAILED),
    (S.PROCESSING, S.TIMEOUT),
    (S.PROCESSING, S.CANCELLED),
    (S.FAILED, S.PENDING),
    (S.TIMEOUT, S.PENDING),
    (S.CANCELLED, S.PENDING),
    (S.WAITING, S.PENDING),
    (S.WAITING, S.CANCELLED),
    (S.CANCELLED, S.WAITING),
}
ALL_PAIRS = list(itertools.product(TaskStatus, TaskStatus))
ILLEGAL = [pair for pair in ALL_PAIRS if pair not in DESIGN_EDGES]


def test_allowed_moves_are_exactly_the_design_edges() -> None:
    table = {(src, dst) for src, targets in ALLOWED_MOVES.items() for dst in targets}
    assert table == DESIGN_EDGES
    assert set(ALLOWED_MOVES) == set(TaskStatus)


@pytest.mark.parametrize(("source", "target"), sorted(DESIGN_EDGES))
def test_every_allowed_move_passes(source: TaskStatus, target: TaskStatus) -> None:
    check_move(source, target)


@pytest.mark.parametrize(("source", "target"), ILLEGAL)
def test_every_illegal_move_raises(source: TaskStatus, target: TaskStatus) -> None:
    with pytest.raises(IllegalTransition) as caught:
        check_move(source, target)
    assert str(source) in str(caught.value)
    assert str(target) in str(caught.value)


def test_illegal_transition_is_a_conflict() -> None:
    assert issubclass(IllegalTransition, Conflict)


def test_success_is_a_dead_end_and_self_moves_are_illegal() -> None:
    assert ALLOWED_MOVES[S.SUCCESS] == frozenset()
    assert len(ILLEGAL) == len(ALL_PAIRS) - len(DESIGN_EDGES)
    for status in TaskStatus:
        assert (status, status) in ILLEGAL


def test_final_statuses() -> None:
    assert {s for s in TaskStatus if s.is_final} == FINAL_STATUSES
    assert {S.SUCCESS, S.FAILED, S.TIMEOUT, S.CANCELLED} == FINAL_STATUSES
    assert not S.PENDING.is_final
    assert not S.PROCESSING.is_final
    assert not S.WAITING.is_final


@pytest.mark.parametrize("target", [S.PROCESSING, S.SUCCESS, S.FAILED, S.TIMEOUT, S.WAITING])
def test_a_waiting_task_is_only_released_or_cancelled(target: TaskStatus) -> None:
    """docs/design.md §10: a task with parents never starts, ends or fails before its release."""
    with pytest.raises(IllegalTransition):
        check_move(S.WAITING, target)


@pytest.mark.parametrize("source", [S.PENDING, S.PROCESSING, S.SUCCESS, S.FAILED, S.TIMEOUT])
def test_only_a_cancelled_task_goes_back_to_waiting(source: TaskStatus) -> None:
    with pytest.raises(IllegalTransition):
        check_move(source, S.WAITING)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("high", Priority.HIGH),
        ("normal", Priority.NORMAL),
        ("low", Priority.LOW),
        ("HIGH", Priority.HIGH),
        ("Low", Priority.LOW),
        (" normal ", Priority.NORMAL),
        (2, Priority.HIGH),
        (1, Priority.NORMAL),
        (0, Priority.LOW),
        ("2", Priority.HIGH),
        ("0", Priority.LOW),
        (Priority.NORMAL, Priority.NORMAL),
    ],
)
def test_priority_parse_accepts(raw: object, expected: Priority) -> None:
    assert Priority.parse(raw) is expected


@pytest.mark.parametrize("raw", ["urgent", "", "3", "-1", 3, -1, True, False, None, 1.0, [1]])
def test_priority_parse_rejects(raw: object) -> None:
    with pytest.raises(ValidationError, match="priority must be high, normal, low"):
        Priority.parse(raw)


def test_priority_order_and_label() -> None:
    assert Priority.HIGH > Priority.NORMAL > Priority.LOW
    assert [p.label for p in Priority] == ["low", "normal", "high"]


@pytest.mark.parametrize(
    "name",
    ["echo", "a", "0", "resize_image", "billing.invoice:v2", "A-b_c.d:e", "x" * 128],
)
def test_task_type_accepted(name: str) -> None:
    assert check_task_type(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "_leading",
        "-leading",
        ".leading",
        ":leading",
        "has space",
        "slash/type",
        "star*",
        "brace{x}",
        "tab\there",
        "new\nline",
        "ünïcode",
        "x" * 129,
    ],
)
def test_task_type_rejected(name: str) -> None:
    with pytest.raises(ValidationError, match="task_type"):
        check_task_type(name)


def test_task_type_must_be_a_string() -> None:
    with pytest.raises(ValidationError):
        check_task_type(123)  # type: ignore[arg-type]


def test_queue_items_carry_their_tenant_and_read_the_old_form() -> None:
    plain = QueueItem("01J", "mail.send", Priority.HIGH)
    assert plain.tenant == DEFAULT_TENANT
    assert plain.encode() == "01J|mail.send|2"  # as before tenants: old queues still match
    assert QueueItem.decode("01J|mail.send|2") == plain
    acme = QueueItem("01J", "mail.send", Priority.LOW, "acme")
    assert acme.encode() == "01J|mail.send|0|acme"
    assert QueueItem.decode(acme.encode()) == acme
    assert QueueItem.decode(b"01J|mail.send|0|acme") == acme

"""Pure: when a WAITING task is released, cancelled or left waiting, and what its payload
becomes (docs/design.md §10). No I/O: ``store/deps.py`` reads the edges and writes the verdicts.

A child is released (WAITING → PENDING) once every parent succeeded. A parent that ended
FAILED, TIMEOUT or CANCELLED (final: its retries are spent, or it was stopped) cancels the child
with a reason naming it, unless the child's policy is ``run``: then the child is released once
every parent has ended, whatever the outcome. A parent row that no longer exists (purged) counts
as ended without success, so a child can never wait for ever on a parent that is gone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.errors import ValidationError
from conveyor.models import PARENT_POLICIES, Input, Task, TaskStatus

S = TaskStatus
FAN_IN = "*"  # an input reference naming every parent, in order: the key gets a list
MAX_PARENTS = 1000
MAX_WAIT = 365 * 86_400.0  # wait_timeout_seconds at most, like a delay


@dataclass(frozen=True, slots=True)
class Edge:
    """One parent of a child as a release sees it."""

    parent_id: str
    position: int
    policy: str
    parent_status: TaskStatus | None  # None: the parent row is gone
    parent_result: Any = None
    inputs: tuple[Input, ...] = ()  # the child's inputs that read this parent


@dataclass(frozen=True, slots=True)
class Verdict:
    target: TaskStatus | None  # PENDING, CANCELLED, or None: keep waiting
    reason: str = ""
    payload: dict[str, Any] | None = None  # the payload with inputs filled, when it changes


WAIT = Verdict(None)


def decide(payload: dict[str, Any], edges: Sequence[Edge]) -> Verdict:
    """The verdict on one child from all of its edges."""
    ordered = sorted(edges, key=lambda e: e.position)
    failed = [e for e in ordered if e.parent_status is None or
              (e.parent_status.is_final and e.parent_status != S.SUCCESS)]
    policy = ordered[0].policy if ordered else "cancel"
    if failed and policy == "cancel":
        first = failed[0]
        ended = "no longer exists" if first.parent_status is None else (
            f"ended {first.parent_status}")
        return Verdict(S.CANCELLED, f"parent {first.parent_id} {ended}")
    if not all(e.parent_status is None or e.parent_status.is_final for e in ordered):
        return WAIT
    if not any(e.inputs for e in ordered):
        return Verdict(S.PENDING, "every parent ended" if failed else "every parent succeeded")
    try:
        filled = fill_inputs(payload, ordered)
    except ValidationError as exc:
        return Verdict(S.CANCELLED, str(exc))
    return Verdict(S.PENDING, "every parent ended; inputs filled", filled)


def fill_inputs(payload: dict[str, Any], ordered: Sequence[Edge]) -> dict[str, Any]:
    """``payload`` with each input key set from its parent's result (a fan-in key: the list
    of every parent's, in parent order). A path missing from a result refuses the release."""
    out = dict(payload)
    for edge in ordered:
        for item in edge.inputs:
            value = dig(edge.parent_result, item.path, edge.parent_id)
            if item.parent is None:
                out.setdefault(item.key, [])
                out[item.key].append(value)
            else:
                out[item.key] = value
    return out


def dig(result: Any, path: str, parent_id: str) -> Any:
    """The value at a dotted ``path`` in a result ("" is the whole result); list items by
    index."""
    value = result
    for part in path.split(".") if path else ():
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise ValidationError(f"input: the result of parent {parent_id} has no {path!r}")
    return value


def parse_input(key: str, reference: str, parents: Mapping[str, str]) -> Input:
    """``"fetch.result.path"`` → an input from parent ``fetch`` (``parents`` maps the names a
    caller may use, node names or task ids, to task ids); ``"*.result"`` is a fan-in."""
    name, _, rest = reference.partition(".")
    if rest != "result" and not rest.startswith("result."):
        raise ValidationError(
            f"inputs.{key}: {reference!r} must read '<parent>.result' or '<parent>.result.<path>'"
        )
    path = rest[len("result."):] if rest != "result" else ""
    if name == FAN_IN:
        return Input(key, None, path)
    if name not in parents:
        raise ValidationError(f"inputs.{key}: {name!r} is not a parent of this task")
    return Input(key, parents[name], path)


def edge_inputs(child: Task, parent_id: str) -> list[list[str]] | None:
    """What ``task_deps.inputs`` holds for one edge: [key, path, "1" for a fan-in]."""
    mine = [[i.key, i.path, "1" if i.parent is None else ""] for i in child.inputs
            if i.parent in (None, parent_id)]
    return mine or None


def read_inputs(stored: Any, parent_id: str) -> tuple[Input, ...]:
    if not stored:
        return ()
    return tuple(Input(k, None if fan else parent_id, p) for k, p, fan in stored)


def wait_deadline(
    timeout: float | None, has_parents: bool, now: float, where: str = "",
    field: str = "depends_on",
) -> float | None:
    """When a task created ``now`` stops waiting (``wait_timeout_seconds``): only a task with
    parents waits, so a timeout without them is refused rather than ignored."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not (
            0 < timeout <= MAX_WAIT):
        raise ValidationError(f"{where}wait_timeout_seconds must be a number of seconds "
                              f"above 0 and at most {MAX_WAIT:.0f}")
    if not has_parents:
        raise ValidationError(f"{where}wait_timeout_seconds needs {field}: only a task with "
                              "parents waits")
    return now + timeout


def check_policy(policy: str, where: str = "") -> None:
    if policy not in PARENT_POLICIES:
        raise ValidationError(f"{where}on_parent_failure must be 'cancel' or 'run', not {policy!r}")


def check_parents(depends_on: Sequence[str], policy: str, where: str = "") -> tuple[str, ...]:
    """The parent ids as given, refused when malformed (their existence is the caller's)."""
    check_policy(policy, where)
    parents = tuple(depends_on)
    if len(parents) > MAX_PARENTS:
        raise ValidationError(f"{where}depends_on holds at most {MAX_PARENTS} task ids")
    if not all(isinstance(p, str) for p in parents):
        raise ValidationError(f"{where}depends_on holds task ids (strings)")
    twice = sorted(p for p, n in Counter(parents).items() if n > 1)
    if twice:
        raise ValidationError(f"{where}depends_on names {', '.join(twice)} more than once")
    return parents

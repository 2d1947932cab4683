"""docs/design.md §8 checked on the ``task`` and ``task_logs`` rows a fault run left behind.

Pure: rows in, a ``Findings`` out, so the checks themselves are unit-tested on hand-made rows
(``test_invariants.py``) and the fault run only has to fetch the rows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from conveyor.models import ALLOWED_MOVES, FINAL_STATUSES, TaskStatus

S = TaskStatus
MANUAL_RETRY = "manual retry"
# Messages of the rows that record an attempt lost to a crash or a vanished worker; such
# attempts do not spend a retry (retry.py), so §8.5 counts them apart. The store's own marker
# is the rerun row (TIMEOUT → PENDING) it writes for every such attempt: "attempt lost (why)".
LOST_MARKERS = ("stopped answering", "worker shut down", "attempt lost")
RERUN_MARKER = "attempt lost ("


@dataclass(frozen=True)
class Log:
    id: int
    task_id: str
    attempt: int
    from_status: str | None
    to_status: str
    at: float
    message: str
    worker_id: str | None
    epoch: int | None


@dataclass(frozen=True)
class Row:
    id: str
    status: str
    attempt: int
    max_retries: int


@dataclass
class Findings:
    """Each list holds ``(task_id, why)``; empty lists mean the guarantee held."""

    not_final: list[tuple[str, str]] = field(default_factory=list)
    double_success: list[tuple[str, str]] = field(default_factory=list)
    illegal_moves: list[tuple[str, str]] = field(default_factory=list)
    broken_chain: list[tuple[str, str]] = field(default_factory=list)
    moved_after_final: list[tuple[str, str]] = field(default_factory=list)
    status_mismatch: list[tuple[str, str]] = field(default_factory=list)
    too_many_attempts: list[tuple[str, str]] = field(default_factory=list)
    two_owners: list[tuple[str, str]] = field(default_factory=list)
    unfenced_scheduler_rows: list[tuple[str, str]] = field(default_factory=list)
    stale_epoch_rows: list[tuple[str, str]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def violations(self) -> dict[str, list[tuple[str, str]]]:
        return {
            name: value for name, value in vars(self).items()
            if isinstance(value, list) and value
        }


def is_lost(log: Log) -> bool:
    return any(marker in log.message for marker in LOST_MARKERS)


def lost_attempts(logs: list[Log]) -> set[int]:
    """Attempts recorded as lost: by the row ending the attempt, or by the store's rerun row
    (which every lost attempt gets, whatever noticed the loss)."""
    return {
        lg.attempt for lg in logs
        if (lg.from_status == S.PROCESSING and is_lost(lg))
        or (lg.to_status == S.PENDING and lg.message.startswith(RERUN_MARKER))
    }


def _automatic_retry(log: Log, after: Log | None) -> bool:
    """``log`` moved to FAILED/TIMEOUT and ``after`` is the retry written with it."""
    return (
        after is not None and after.from_status == log.to_status and after.to_status == S.PENDING
        and after.attempt == log.attempt and after.message != MANUAL_RETRY
    )


def check_task(row: Row, logs: list[Log], found: Findings) -> None:
    """Every per-task guarantee for one task and its logs in id order."""
    tid = row.id
    if row.status not in FINAL_STATUSES:
        found.not_final.append((tid, f"status {row.status}"))
    successes = sum(1 for lg in logs if lg.to_status == S.SUCCESS)
    if successes > 1:
        found.double_success.append((tid, f"{successes} SUCCESS rows"))
    if logs and logs[-1].to_status != row.status:
        found.status_mismatch.append((tid, f"row {row.status}, last log {logs[-1].to_status}"))
    previous: str | None = None
    final = False
    for i, lg in enumerate(logs):
        after = logs[i + 1] if i + 1 < len(logs) else None
        _check_move(tid, lg, previous, i, found)
        if final and not (lg.to_status == S.PENDING and lg.message == MANUAL_RETRY):
            found.moved_after_final.append(
                (tid, f"log {lg.id} {lg.from_status}->{lg.to_status} after a final state"))
        if lg.to_status in (S.SUCCESS, S.CANCELLED):
            final = True
        elif lg.to_status in (S.FAILED, S.TIMEOUT):
            final = not _automatic_retry(lg, after)
        else:
            final = False
        previous = lg.to_status
    _check_attempts(row, logs, found)


def _check_move(tid: str, lg: Log, previous: str | None, index: int, found: Findings) -> None:
    if lg.from_status is None:
        if index != 0 or lg.to_status not in (S.PENDING, S.WAITING):  # WAITING: has parents
            found.illegal_moves.append((tid, f"log {lg.id} from nothing to {lg.to_status}"))
    elif S(lg.to_status) not in ALLOWED_MOVES[S(lg.from_status)]:
        found.illegal_moves.append((tid, f"log {lg.id} {lg.from_status}->{lg.to_status}"))
    if index and lg.from_status != previous:
        found.broken_chain.append(
            (tid, f"log {lg.id} moves from {lg.from_status} but the task was {previous}"))


def _check_attempts(row: Row, logs: list[Log], found: Findings) -> None:
    manual = sum(1 for lg in logs if lg.message == MANUAL_RETRY)
    lost = len(lost_attempts(logs))
    allowed = (row.max_retries + 1) * (1 + manual) + lost
    if row.attempt > allowed:
        found.too_many_attempts.append(
            (row.id, f"attempt {row.attempt} > {allowed} (max_retries {row.max_retries}, "
                     f"{manual} manual retries, {lost} lost attempts)"))
    starts = Counter(lg.attempt for lg in logs if lg.to_status == S.PROCESSING)
    ends = Counter(lg.attempt for lg in logs if lg.from_status == S.PROCESSING)
    for attempt, n in (starts + ends).items():
        if starts[attempt] > 1 or ends[attempt] > 1:
            found.two_owners.append(
                (row.id, f"attempt {attempt} started {starts[attempt]}x, ended {ends[attempt]}x "
                         f"({n} rows)"))
    found.counts["lost attempts"] += lost
    found.counts["manual retries"] += manual
    found.counts["automatic retries"] += sum(
        1 for lg in logs if lg.to_status == S.PENDING and lg.message.startswith("retry "))
    found.counts["attempts"] += row.attempt


def check_epochs(logs: list[Log], lease_ttl: float, found: Findings) -> None:
    """§8.6 on every row in id order.

    A row moving a task out of PROCESSING without a worker id was written by a scheduler and
    must carry an epoch. Among rows with an epoch, once epoch e+k was first written, no row of
    a lower epoch may appear more than one lease TTL later (two leaders' transactions can
    overlap by less than that: the old one stops trusting its lease before it runs out).
    """
    first_seen: dict[int, float] = {}
    strict_drops = 0
    highest = 0
    for lg in logs:
        if lg.worker_id is None and lg.from_status == S.PROCESSING and lg.epoch is None:
            found.unfenced_scheduler_rows.append((lg.task_id, f"log {lg.id}: {lg.message}"))
        if lg.epoch is None:
            continue
        first_seen.setdefault(lg.epoch, lg.at)
        if lg.epoch < highest:
            strict_drops += 1
        highest = max(highest, lg.epoch)
        newer = [e for e, at in first_seen.items() if e > lg.epoch and at < lg.at - lease_ttl]
        if newer:
            found.stale_epoch_rows.append(
                (lg.task_id, f"log {lg.id} epoch {lg.epoch} at {lg.at:.3f}, after epoch "
                             f"{max(newer)} acted at {first_seen[max(newer)]:.3f}"))
    found.counts["epochs seen"] = len(first_seen)
    found.counts["rows below an epoch already seen"] = strict_drops


def check_all(rows: list[Row], logs: list[Log], lease_ttl: float) -> Findings:
    found = Findings()
    by_task: dict[str, list[Log]] = defaultdict(list)
    for lg in sorted(logs, key=lambda x: x.id):
        by_task[lg.task_id].append(lg)
    for row in rows:
        check_task(row, by_task.get(row.id, []), found)
    check_epochs(sorted(logs, key=lambda x: x.id), lease_ttl, found)
    found.counts["tasks"] = len(rows)
    found.counts["log rows"] = len(logs)
    for row in rows:
        found.counts[f"final {row.status}"] += 1
    return found


def as_log(r: Any) -> Log:
    return Log(int(r.id), r.task_id, int(r.attempt), r.from_status, r.to_status, float(r.at),
               r.message, r.worker_id, None if r.epoch is None else int(r.epoch))


def as_row(r: Any) -> Row:
    return Row(r.id, r.status, int(r.attempt), int(r.max_retries))

"""The §8 checks of the fault run, on hand-made rows: each catches what it is meant to."""

from __future__ import annotations

from tests.faults.invariants import Log, Row, check_all

_ids = iter(range(1, 10_000))


def log(task: str, attempt: int, source: str | None, target: str, at: float = 0.0,
        message: str = "", worker: str | None = "w", epoch: int | None = None) -> Log:
    return Log(next(_ids), task, attempt, source, target, at, message, worker, epoch)


def happy(task: str = "t") -> list[Log]:
    return [log(task, 0, None, "PENDING", message="created", worker=None),
            log(task, 1, "PENDING", "PROCESSING"), log(task, 1, "PROCESSING", "SUCCESS")]


def test_a_clean_history_passes() -> None:
    retried = [
        log("r", 0, None, "PENDING", worker=None),
        log("r", 1, "PENDING", "PROCESSING"),
        log("r", 1, "PROCESSING", "FAILED"), log("r", 1, "FAILED", "PENDING", message="retry 1/1"),
        log("r", 2, "PENDING", "PROCESSING"), log("r", 2, "PROCESSING", "FAILED"),
        log("r", 2, "FAILED", "PENDING", message="manual retry", worker=None),
        log("r", 3, "PENDING", "PROCESSING"), log("r", 3, "PROCESSING", "SUCCESS"),
    ]
    found = check_all([Row("t", "SUCCESS", 1, 3), Row("r", "SUCCESS", 3, 1)],
                      happy() + retried, 1.0)
    assert found.violations() == {}
    assert found.counts["manual retries"] == 1 and found.counts["automatic retries"] == 1


def test_each_broken_guarantee_is_named() -> None:
    twice = [*happy("d"), log("d", 1, "SUCCESS", "CANCELLED")]
    found = check_all([Row("d", "CANCELLED", 5, 1), Row("p", "PENDING", 0, 1)],
                      [*twice, log("p", 0, None, "PENDING", worker=None)], 1.0)
    names = set(found.violations())
    assert {"not_final", "illegal_moves", "moved_after_final", "too_many_attempts"} <= names


def test_lost_attempts_do_not_count_against_retries() -> None:
    logs = [log("x", 0, None, "PENDING", worker=None)]
    for attempt in (1, 2):
        logs += [log("x", attempt, "PENDING", "PROCESSING"),
                 log("x", attempt, "PROCESSING", "TIMEOUT", worker=None, epoch=1,
                     message="worker w stopped answering"),
                 log("x", attempt, "TIMEOUT", "PENDING", worker=None, epoch=1,
                     message="attempt lost (worker w stopped answering)")]
    logs += [log("x", 3, "PENDING", "PROCESSING"), log("x", 3, "PROCESSING", "SUCCESS")]
    assert check_all([Row("x", "SUCCESS", 3, 0)], logs, 1.0).violations() == {}


def test_an_attempt_a_live_worker_lost_track_of_is_counted_as_lost() -> None:
    logs = [log("y", 0, None, "PENDING", worker=None),
            log("y", 1, "PENDING", "PROCESSING"),
            log("y", 1, "PROCESSING", "TIMEOUT", message="the worker lost track of this attempt"),
            log("y", 1, "TIMEOUT", "PENDING",
                message="attempt lost (the worker lost track of this attempt); rerun due at 1"),
            log("y", 2, "PENDING", "PROCESSING"), log("y", 2, "PROCESSING", "SUCCESS")]
    assert check_all([Row("y", "SUCCESS", 2, 0)], logs, 1.0).violations() == {}


def test_an_old_epoch_acting_after_a_newer_one_is_caught() -> None:
    logs = [*happy("a"), *happy("b")]
    logs += [log("a", 1, "PROCESSING", "TIMEOUT", at=10.0, worker=None, epoch=2),
             log("b", 1, "PROCESSING", "TIMEOUT", at=10.5, worker=None, epoch=1),
             log("b", 1, "PROCESSING", "TIMEOUT", at=12.0, worker=None, epoch=1),
             log("b", 1, "PROCESSING", "TIMEOUT", at=12.0, worker=None)]
    found = check_all([], logs, 1.0)
    assert [why for _, why in found.stale_epoch_rows] == [
        f"log {logs[-2].id} epoch 1 at 12.000, after epoch 2 acted at 10.000"]
    assert len(found.unfenced_scheduler_rows) == 1

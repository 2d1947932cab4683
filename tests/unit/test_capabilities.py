"""What a worker advertises (``runnable_types``) and which pending types no live worker runs
(``unrunnable``): pure rules, so every case is spelled out here."""

from __future__ import annotations

from conveyor.executors.functions import FunctionPolicy
from conveyor.models import TaskConfig, WorkerInfo
from conveyor.operations import unrunnable
from conveyor.registrations import Registration
from conveyor.worker.capabilities import runnable_types


def registered() -> None:
    """A function this worker registered."""


REGS = {"echo": Registration("echo", registered)}
POLICY = FunctionPolicy(REGS, ["allowed_mod"])
CONFIGS = [
    TaskConfig("hook", executor="http", executor_config={"url": "http://x"}),
    TaskConfig("rpc", executor="grpc", executor_config={"target": "x:1"}),
    TaskConfig("plugged", executor="custom"),
    TaskConfig("resize"),  # python, no function named: runs only where "resize" is registered
    TaskConfig("named", executor_config={"function": "allowed_mod:job"}),
    TaskConfig("alias", executor_config={"function": f"{__name__}:registered"}),
    TaskConfig("foreign", executor_config={"function": "other_mod:job"}),
]


def test_a_worker_advertises_its_registrations_and_the_configs_it_has_the_means_for() -> None:
    """Not ``*``: ``resize`` (the user's python type, not registered here), ``plugged``
    (an executor this worker lacks) and ``foreign`` (a module it may not import) are left
    out, so the dispatcher never hands it a task it would fail permanently."""
    types = runnable_types(REGS, CONFIGS, {"python", "http", "grpc"}, POLICY)
    assert types == ("alias", "echo", "hook", "named", "rpc")


def test_a_worker_with_the_app_also_advertises_the_apps_types() -> None:
    regs = {**REGS, "resize": Registration("resize", registered)}
    assert "resize" in runnable_types(regs, CONFIGS, {"python"}, FunctionPolicy(regs, []))


def test_supported_types_restricts_what_is_advertised() -> None:
    types = runnable_types(REGS, CONFIGS, {"python", "http"}, POLICY, only=("echo", "rpc"))
    assert types == ("echo",)


def worker(types: tuple[str, ...]) -> WorkerInfo:
    return WorkerInfo("w", "h", 1, 4, types, 1.0)


def test_unrunnable_counts_pending_tasks_of_the_types_no_live_worker_runs() -> None:
    by_status = {("resize", "PENDING"): 3, ("resize", "FAILED"): 1, ("echo", "PENDING"): 2,
                 ("gone", "SUCCESS"): 5}
    assert unrunnable(by_status, [worker(("echo",))]) == {"resize": 3}
    assert unrunnable(by_status, [worker(("echo",)), worker(("resize",))]) == {}
    assert unrunnable(by_status, []) == {"echo": 2, "resize": 3}

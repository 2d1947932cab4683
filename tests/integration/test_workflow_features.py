"""The later workflow features through the real app (docs/design.md §10): wait timeouts on a
task and a workflow node, sharded creates with a fan-in, and their bad input; on SQLite,
MariaDB and PostgreSQL where tasks run."""

from __future__ import annotations

from tests.integration.test_api import Api, any_api, api, error_of, running
from tests.integration.test_workflows_api import create, echo, wait_state

__all__ = ["any_api", "api"]  # the fixtures, shared with test_api


async def test_a_task_waiting_past_its_timeout_is_cancelled_saying_so(any_api: Api) -> None:
    async with running(any_api):
        slow = await any_api.created(delay_seconds=60)
        kid = await any_api.created(depends_on=[slow["task_id"]], wait_timeout_seconds=0.5)
        assert kid["status"] == "WAITING" and kid["wait_deadline"]
        done = await any_api.wait_final(kid["task_id"])
        assert done["status"] == "CANCELLED" and "waited too long" in done["error"]
        assert (await any_api.get(slow["task_id"]))["status"] == "PENDING"


async def test_a_workflow_node_waiting_too_long_cancels_its_descendants(api: Api) -> None:
    async with running(api):
        made = await create(api, {
            "slow": echo(delay_seconds=60),
            "wait": echo("slow", wait_timeout_seconds=0.5),
            "after": echo("wait"),
        })
        after = await api.wait_final(made["nodes"]["after"])
        assert after["status"] == "CANCELLED" and made["nodes"]["wait"] in after["error"]
        wait = await api.get(made["nodes"]["wait"])
        assert wait["status"] == "CANCELLED" and "waited too long" in wait["error"]
        assert (await api.get(made["nodes"]["slow"]))["status"] == "PENDING"


async def test_bad_wait_timeouts_are_refused_naming_the_field(api: Api) -> None:
    alone = error_of(await api.create(wait_timeout_seconds=5), 422)
    assert "wait_timeout_seconds" in alone and "depends_on" in alone
    parent = await api.created()
    for bad in (0, -1, "soon"):
        message = error_of(await api.create(depends_on=[parent["task_id"]],
                                            wait_timeout_seconds=bad), 422)
        assert "wait_timeout_seconds" in message
    root = await api.http.post("/api/v1/workflows", json={"name": "w", "tasks": {
        "a": echo(wait_timeout_seconds=5)}})
    message = error_of(root, 422)
    assert "tasks.a" in message and "after" in message
    assert await api.stored() == 1


async def test_shards_run_with_their_index_and_the_fan_in_gets_results_in_order(
    any_api: Api,
) -> None:
    async with running(any_api):
        made = await any_api.created(payload={"job": "j"}, shards=12,
                                     then={"task_type": "echo", "payload": {"sum": True}})
        names = [f"shard-{i:02d}" for i in range(12)]
        assert sorted(made["nodes"]) == sorted([*names, "then"])
        done = await wait_state(any_api, made["workflow_id"])
        assert done["state"] == "SUCCESS", done
        then = await any_api.get(made["nodes"]["then"])
        assert then["result"]["sum"] is True
        assert then["result"]["results"] == [
            {"job": "j", "shard_index": i, "shard_total": 12} for i in range(12)]
        shard = await any_api.get(made["nodes"]["shard-03"])
        assert shard["payload"] == {"job": "j", "shard_index": 3, "shard_total": 12}


async def test_a_failing_shard_cancels_the_fan_in(api: Api) -> None:
    async with running(api):
        made = await api.created(task_type="fail", payload={"permanent": True}, max_retries=0,
                                 shards=2, then={"task_type": "echo"})
        then = await api.wait_final(made["nodes"]["then"])
        assert then["status"] == "CANCELLED" and "ended FAILED" in then["error"]
        assert (await wait_state(api, made["workflow_id"]))["state"] == "FAILED"


async def test_bad_shards_are_refused_naming_the_field(api: Api) -> None:
    parent = await api.created()
    cases: list[tuple[dict[str, object], str]] = [
        ({"shards": 0}, "shards"), ({"shards": 10_001}, "shards"), ({"shards": -3}, "shards"),
        ({"shards": True}, "shards"), ({"shards": "3"}, "shards"),
        ({"shards": 2, "broadcast": True}, "broadcast"),
        ({"shards": 2, "depends_on": [parent["task_id"]]}, "depends_on"),
        ({"shards": 2, "idempotency_key": "k"}, "idempotency_key"),
        ({"then": {"task_type": "echo"}}, "then"),
        ({"shards": 2, "then": {"task_type": "nope"}}, "then"),
        ({"broadcast": True}, "broadcast"),
    ]
    for body, field in cases:
        message = error_of(await api.create(**body), 422)
        assert field in message, (body, message)
    assert await api.stored() == 1


async def test_a_broadcast_runs_one_copy_on_each_live_worker(any_api: Api) -> None:
    async with running(any_api):
        workers = (await any_api.http.get("/api/v1/workers")).json()
        live = sorted(w["worker_id"] for w in (workers["workers"] if isinstance(workers, dict)
                                               else workers))
        made = await any_api.created(payload={"x": 1}, broadcast=True,
                                     then={"task_type": "echo"})
        assert sorted(made["nodes"]) == [*(f"copy-{i}" for i in range(len(live))), "then"]
        then = await any_api.wait_final(made["nodes"]["then"])
        assert then["status"] == "SUCCESS"
        assert then["result"]["results"] == [{"x": 1}] * len(live)
        copies = [await any_api.get(made["nodes"][f"copy-{i}"]) for i in range(len(live))]
        assert [c["worker_id"] for c in copies] == [c["pinned_worker"] for c in copies] == live


async def test_a_broadcast_with_no_live_worker_is_refused(api: Api) -> None:
    message = error_of(await api.create(broadcast=True), 422)
    assert "broadcast" in message and "no live worker" in message
    assert await api.stored() == 0

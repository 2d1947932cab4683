"""``depends_on`` on ``POST /api/v1/tasks`` (docs/design.md §10), through the real app with
the worker and scheduler running in-process: a child waits, runs after its parents with their
results in its payload, and is cancelled when a parent fails for good."""

from __future__ import annotations

from tests.integration.test_api import Api, any_api, api, error_of, running

__all__ = ["any_api", "api"]  # the fixtures, shared with test_api


async def test_a_child_runs_after_its_parents_with_their_results(any_api: Api) -> None:
    async with running(any_api):
        a = await any_api.created(payload={"path": "a.png"}, delay_seconds=0.3)
        b = await any_api.created(payload={"path": "b.png"})
        join = await any_api.created(
            payload={"k": 1}, depends_on=[a["task_id"], b["task_id"]],
            inputs={"first": f"{a['task_id']}.result.path", "all": "*.result.path"},
        )
        assert join["status"] == "WAITING"
        done = await any_api.wait_final(join["task_id"])
        assert done["status"] == "SUCCESS"
        assert done["result"] == {"k": 1, "first": "a.png", "all": ["a.png", "b.png"]}
        parent = await any_api.get(a["task_id"])
        assert done["started_at"] >= parent["finished_at"]


async def test_a_parent_that_fails_for_good_cancels_its_child(api: Api) -> None:
    async with running(api):
        bad = await api.created(task_type="fail", payload={"permanent": True}, max_retries=0)
        kid = await api.created(depends_on=[bad["task_id"]])
        anyway = await api.created(depends_on=[bad["task_id"]], on_parent_failure="run")
        cancelled = await api.wait_final(kid["task_id"])
        assert cancelled["status"] == "CANCELLED" and bad["task_id"] in cancelled["error"]
        assert (await api.wait_final(anyway["task_id"]))["status"] == "SUCCESS"


async def test_bad_dependencies_are_refused_naming_them(api: Api) -> None:
    missing = "01KZZZZZZZZZZZZZZZZZZZZZZZ"
    message = error_of(await api.create(depends_on=[missing, "nonsense"]), 422)
    assert missing in message and "nonsense" in message
    parent = await api.created()
    twice = error_of(await api.create(depends_on=[parent["task_id"]] * 2), 422)
    assert parent["task_id"] in twice
    policy = await api.create(depends_on=[parent["task_id"]], on_parent_failure="maybe")
    assert policy.status_code == 422
    stray = error_of(await api.create(depends_on=[parent["task_id"]],
                                      inputs={"x": "other.result"}), 422)
    assert "'other'" in stray
    alone = error_of(await api.create(inputs={"x": "*.result"}), 422)
    assert "depends_on" in alone
    assert await api.stored() == 1


async def test_a_waiting_task_can_be_cancelled(api: Api) -> None:
    parent = await api.created(delay_seconds=60)
    kid = await api.created(depends_on=[parent["task_id"]])
    answer = await api.http.post(f"/api/v1/tasks/{kid['task_id']}/cancel")
    assert answer.status_code == 200 and answer.json()["status"] == "CANCELLED"

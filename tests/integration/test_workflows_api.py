"""``/api/v1/workflows`` (docs/design.md §10) through the real app on SQLite, MariaDB and
PostgreSQL, with the worker and scheduler in-process where tasks must run: a diamond, a chain
of 100, a fan-out / fan-in of 1,000, failure propagation, cancel and retry, bad graphs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from conveyor.canvas import chain, chord, group, step
from tests.integration.test_api import Api, any_api, api, error_of, running

__all__ = ["any_api", "api"]  # the fixtures, shared with test_api


async def create(api: Api, tasks: dict[str, Any], name: str = "wf") -> dict[str, Any]:
    answer = await api.http.post("/api/v1/workflows", json={"name": name, "tasks": tasks})
    assert answer.status_code == 201, answer.text
    data: dict[str, Any] = answer.json()
    return data


async def wait_state(api: Api, wf: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got: dict[str, Any] = (await api.http.get(f"/api/v1/workflows/{wf}")).json()
        if got["state"] != "RUNNING":
            return got
        assert time.monotonic() < deadline, got
        await asyncio.sleep(0.05)


def echo(*after: str, **extra: Any) -> dict[str, Any]:
    return {"task_type": "echo", "after": list(after), **extra}


async def test_a_diamond_runs_in_order_with_results_downstream(any_api: Api) -> None:
    async with running(any_api):
        made = await create(any_api, {
            "a": echo(payload={"path": "a.png"}),
            "b": echo("a", inputs={"image": "a.result.path"}),
            "c": echo("a", payload={"n": 2}),
            "d": echo("b", "c", inputs={"both": "*.result"}),
        })
        done = await wait_state(any_api, made["workflow_id"])
        assert done["state"] == "SUCCESS", done
        d = await any_api.get(made["nodes"]["d"])
        b = await any_api.get(made["nodes"]["b"])
        assert b["result"]["image"] == "a.png"
        assert d["result"]["both"] == [b["result"], {"n": 2}]
        for parent in ("b", "c"):
            assert d["started_at"] >= (await any_api.get(made["nodes"][parent]))["finished_at"]


async def test_a_chain_of_100(api: Api) -> None:
    nodes = {"n0": echo()} | {f"n{i}": echo(f"n{i - 1}") for i in range(1, 100)}
    async with running(api):
        made = await create(api, nodes)
        assert (await wait_state(api, made["workflow_id"]))["state"] == "SUCCESS"
    starts = [(await api.get(made["nodes"][f"n{i}"]))["started_at"] for i in range(100)]
    assert starts == sorted(starts)


async def test_a_fan_out_and_in_of_1000(any_api: Api) -> None:
    nodes = {"root": echo(payload={"v": 0})}
    nodes |= {f"leaf{i}": echo("root", payload={"i": i}) for i in range(1000)}
    nodes["join"] = echo(*(f"leaf{i}" for i in range(1000)), inputs={"all": "*.result.i"})
    async with running(any_api):
        made = await create(any_api, nodes)
        assert (await wait_state(any_api, made["workflow_id"], 120))["state"] == "SUCCESS"
    join = await any_api.get(made["nodes"]["join"])
    assert join["result"]["all"] == list(range(1000))


async def test_a_failure_cancels_descendants_and_retry_reopens_them(api: Api) -> None:
    async with running(api):
        made = await create(api, {
            "flaky": {"task_type": "fail", "payload": {"times": 1}, "max_retries": 0},
            "next": echo("flaky"),
            "last": echo("next"),
            "side": echo(),
        })
        wf = made["workflow_id"]
        failed = await wait_state(api, wf)
        assert failed["state"] == "FAILED"
        states = {n: v["status"] for n, v in failed["nodes"].items()}
        assert states == {"flaky": "FAILED", "next": "CANCELLED", "last": "CANCELLED",
                          "side": "SUCCESS"}
        assert made["nodes"]["flaky"] in (await api.get(made["nodes"]["next"]))["error"]
        retried = await api.http.post(f"/api/v1/workflows/{wf}/retry")
        assert retried.status_code == 200, retried.text
        assert (await wait_state(api, wf))["state"] == "SUCCESS"
        again = await api.http.post(f"/api/v1/workflows/{wf}/retry")
        assert error_of(again, 409)
    audit = (await api.http.get("/api/v1/audit?action=workflow.retry")).json()["entries"]
    assert [e["target_id"] for e in audit] == [wf]


async def test_cancel_stops_every_node_and_is_audited(any_api: Api) -> None:
    made = await create(any_api, {"a": echo(delay_seconds=60), "b": echo("a"), "c": echo("b")})
    wf = made["workflow_id"]
    answer = await any_api.http.post(f"/api/v1/workflows/{wf}/cancel")
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "CANCELLED"
    assert {v["status"] for v in answer.json()["nodes"].values()} == {"CANCELLED"}
    assert error_of(await any_api.http.post(f"/api/v1/workflows/{wf}/cancel"), 409)
    audit = (await any_api.http.get("/api/v1/audit?action=workflow.cancel")).json()["entries"]
    assert [e["target_id"] for e in audit] == [wf]


async def test_list_filters_and_pages(api: Api) -> None:
    ids = [(await create(api, {"a": echo()}, name=f"wf{i % 2}"))["workflow_id"]
           for i in range(5)]
    first = (await api.http.get("/api/v1/workflows?limit=2")).json()
    assert [w["workflow_id"] for w in first["workflows"]] == ids[::-1][:2]
    rest = (await api.http.get(f"/api/v1/workflows?cursor={first['next_cursor']}")).json()
    assert [w["workflow_id"] for w in rest["workflows"]] == ids[::-1][2:]
    assert rest["next_cursor"] is None
    named = (await api.http.get("/api/v1/workflows?name=wf1")).json()["workflows"]
    assert [w["workflow_id"] for w in named] == [ids[3], ids[1]]
    assert error_of(await api.http.get("/api/v1/workflows?cursor=nope"), 422)


async def test_bad_graphs_are_refused_naming_the_offenders(api: Api) -> None:
    async def refused(tasks: dict[str, Any]) -> str:
        answer = await api.http.post("/api/v1/workflows", json={"name": "x", "tasks": tasks})
        return error_of(answer, 422)

    assert "'ghost'" in await refused({"a": echo("ghost")})
    cycle = await refused({"a": echo("c"), "b": echo("a"), "c": echo("b"), "ok": echo()})
    assert all(f"'{n}'" in cycle for n in "abc") and "'ok'" not in cycle
    assert "'a'" in await refused({"a": echo("a")})
    assert "tasks.b" in await refused({"a": echo(), "b": {"task_type": "no_such_type"}})
    assert "tasks.b" in await refused({"a": echo(), "b": echo(inputs={"x": "a.result"})})
    assert "depends_on" in await refused({"a": echo(depends_on=["01KZZZZZZZZZZZZZZZZZZZZZZZ"])})
    big = {f"n{i}": echo() for i in range(10_001)}
    answer = await api.http.post("/api/v1/workflows", json={"name": "x", "tasks": big})
    assert answer.status_code == 422
    assert await api.stored() == 0
    assert error_of(await api.http.get("/api/v1/workflows/01KZZZZZZZZZZZZZZZZZZZZZZZ"), 404)


async def test_a_chord_built_in_python_runs(api: Api) -> None:
    flow = chain(step("echo", v=0), chord(group(*(step("echo", i=i) for i in range(3))),
                                          step("echo", total=True)))
    async with running(api):
        made = await create(api, flow.nodes())
        assert (await wait_state(api, made["workflow_id"]))["state"] == "SUCCESS"
    last = await api.get(made["nodes"]["echo-4"])
    assert last["result"] == {"total": True, "results": [{"i": 0}, {"i": 1}, {"i": 2}]}


async def test_a_dag_of_10000_nodes_in_one_request(any_api: Api) -> None:
    """Layers of 100, each node after two of the layer above: created whole, roots PENDING,
    the rest WAITING, and every node's id above its parents' (locks are taken in id order)."""
    nodes: dict[str, Any] = {}
    for i in range(10_000):
        layer, k = divmod(i, 100)
        after = [] if layer == 0 else [f"n{(layer - 1) * 100 + k}",
                                       f"n{(layer - 1) * 100 + (k + 1) % 100}"]
        nodes[f"n{i}"] = echo(*after, payload={"i": i})
    made = await create(any_api, nodes)
    ids = made["nodes"]
    assert len(ids) == 10_000 and len(set(ids.values())) == 10_000
    for name, spec in nodes.items():
        assert all(ids[p] < ids[name] for p in spec["after"])
    got = (await any_api.http.get(f"/api/v1/workflows/{made['workflow_id']}")).json()
    states = {n: v["status"] for n, v in got["nodes"].items()}
    assert {n for n, s in states.items() if s == "PENDING"} == {f"n{i}" for i in range(100)}
    assert sum(s == "WAITING" for s in states.values()) == 9_900
    assert await any_api.stored() == 10_000

"""Handles of submitted workflows (``canvas`` parts, sharded creates): ``result()`` waits for
the workflow to end and returns what its last node(s) returned, the way ``TaskHandle`` does for
one task.

A workflow's state is derived from its nodes, so the wait polls ``GET /api/v1/workflows/{id}``
with the schedule of ``Client.wait`` (``Poll``), then reads the end nodes' tasks. A workflow
that ended FAILED or CANCELLED raises ``WorkflowFailed`` naming the nodes that did not
succeed and why; no result is returned from a workflow that did not succeed as a whole.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from conveyor.client.wire import Poll, TaskInfo
from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    from conveyor.client.aio import AsyncClient
    from conveyor.client.sync import Client

SHOWN = 5  # failed nodes named in the error text at most


class WorkflowFailed(ConveyorError):
    """Waited for a workflow's result, but it ended FAILED or CANCELLED; ``view`` is its
    ``GET /api/v1/workflows/{id}`` answer, ``failed`` the node → task of those that did not
    succeed."""

    def __init__(self, view: dict[str, Any], failed: dict[str, TaskInfo]) -> None:
        named = "; ".join(f"{n} ({t.task_id}) {t.status}: {t.error or ''}".strip()
                          for n, t in list(failed.items())[:SHOWN])
        more = len(failed) - SHOWN
        super().__init__(f"workflow {view['workflow_id']} ended {view['state']}: {named}"
                         + (f" and {more} more" if more > 0 else ""))
        self.view = view
        self.failed = failed


def unsuccessful(view: dict[str, Any]) -> list[str]:
    """Node names whose task did not succeed (or is gone), in the view's order."""
    return [n for n, node in view["nodes"].items() if node["status"] != "SUCCESS"]


def picked(ends: Sequence[TaskInfo], many: bool) -> Any:
    """The result a handle gives: the list of the end nodes' results, or the one's."""
    results = [t.result for t in ends]
    return results if many else results[-1]


class WorkflowHandle:
    """A submitted workflow: ``id``, ``nodes`` (node → task id) and ``result()``."""

    def __init__(
        self, client: Client, workflow_id: str, nodes: dict[str, str], ends: Sequence[str],
        many: bool,
    ) -> None:
        self.client, self.id, self.nodes = client, workflow_id, nodes
        self.ends, self.many = list(ends), many

    def wait(self, timeout: float | None = 60.0) -> dict[str, Any]:
        """The workflow once it ended (``WaitTimeout`` when it did not within ``timeout``)."""
        poll = Poll(timeout)
        view: dict[str, Any] = self.client.workflows.get(self.id)
        while view["state"] == "RUNNING":
            time.sleep(poll.next_delay(f"workflow {self.id}"))
            view = self.client.workflows.get(self.id)
        return view

    def result(self, timeout: float | None = 60.0) -> Any:
        view = self.wait(timeout)
        if view["state"] != "SUCCESS":
            failed = {n: self.client.get(view["nodes"][n]["task_id"])
                      for n in unsuccessful(view)}
            raise WorkflowFailed(view, failed)
        return picked([self.client.get(self.nodes[n]) for n in self.ends], self.many)


class AsyncWorkflowHandle:
    """``WorkflowHandle`` for ``AsyncClient``: ``await handle.result()``."""

    def __init__(
        self, client: AsyncClient, workflow_id: str, nodes: dict[str, str],
        ends: Sequence[str], many: bool,
    ) -> None:
        self.client, self.id, self.nodes = client, workflow_id, nodes
        self.ends, self.many = list(ends), many

    async def wait(self, timeout: float | None = 60.0) -> dict[str, Any]:
        poll = Poll(timeout)
        view: dict[str, Any] = await self.client.workflows.get(self.id)
        while view["state"] == "RUNNING":
            await asyncio.sleep(poll.next_delay(f"workflow {self.id}"))
            view = await self.client.workflows.get(self.id)
        return view

    async def result(self, timeout: float | None = 60.0) -> Any:
        view = await self.wait(timeout)
        if view["state"] != "SUCCESS":
            failed = {n: await self.client.get(view["nodes"][n]["task_id"])
                      for n in unsuccessful(view)}
            raise WorkflowFailed(view, failed)
        return picked([await self.client.get(self.nodes[n]) for n in self.ends], self.many)

"""Dispatcher: move queued ids to workers, higher priority first, with a load balancer.

One pass peeks the queue heads, chooses a worker for up to ``batch_size`` ids (never more than
the fleet's free slots), and moves them all with one epoch-checked script call. It sleeps until
new work or freed capacity wakes it, and loops at once while a pass keeps filling its batch.

How deep to read the heads follows from the fleet's free slots, so a pass reads the live
workers first. On an idle system that read is a round trip on the path of every task from
submit to start, so while the queues are shallow (the last read held fewer ids than it asked
for) the pass reads the heads beside the workers, in one round trip, as deep as the last
pass's budget; the read is used when it reached the budget or held all the queues had, and
is made again after the workers otherwise. A backlog reads after the workers, as deep as the
budget, and never more than that.

Held-back ids (a paused type, a type at its concurrency cap or out of rate tokens, a type no
live worker takes) stay queued, and must not hold up the runnable ids behind them: a pass whose
budget the queue heads could not fill plans again on a window ``look_past`` ids deeper in each
priority, so runnable work up to that far behind held-back work is dispatched at once. The
window bounds what one pass reads; a pass that fills its budget from the heads reads no more.

Within a priority the queues hand out their items in tenant turns (weighted round-robin,
``coordination.fair``): the dispatcher passes each tenant's weight (``tenant_limits``, cached
for a few seconds) to ``peek`` and ``assign``, and keeps the peeked order, so one tenant's
backlog delays another tenant's task by at most one turn and the next pass resumes the ring.

Flow control is per (tenant, type), a ``Flow``: each tenant's config of a type (``catalog.spec(
type, tenant)``) sets its own concurrency cap, counted against that tenant's in-flight tasks of
the type only, and its own rate bucket (``flow_bucket``), so tenant A at its cap for ``x``
never holds back tenant B's ``x``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence

from conveyor.balancing import Balancer
from conveyor.catalog import Catalog, TypeSpec
from conveyor.coordination.heads import STRICT_ORDER, Heads
from conveyor.coordination.protocol import Coordination
from conveyor.duty import Duty
from conveyor.errors import StaleEpoch
from conveyor.models import QueueItem, WorkerInfo
from conveyor.scheduler.elector import Elector
from conveyor.scheduler.planning import Flow, flow, plan, wants_work
from conveyor.tenants import DEFAULT_TENANT

log = logging.getLogger(__name__)

# Called after a pass with its moves and the pass's start: ``task_spans.DispatchSpans``.
Moved = Callable[[Sequence[tuple[QueueItem, str]], float], Awaitable[None]]


def flow_bucket(key: Flow) -> str:
    """The ``take_tokens`` bucket of a flow: the bare type for the default tenant (the bucket
    it had before tenants), ``type@tenant`` otherwise; ``@`` is in neither a type nor a
    tenant name, and a tenant's create quota bucket starts with it, so none collide."""
    tenant, task_type = key
    return task_type if tenant == DEFAULT_TENANT else f"{task_type}@{tenant}"


class Dispatcher(Duty):
    name = "dispatcher"

    def __init__(
        self,
        coordination: Coordination,
        elector: Elector,
        balancer: Balancer,
        catalog: Catalog,
        *,
        batch_size: int,
        scan_interval: float,
        look_past: int = 0,
        weights: tuple[int, int, int] | None = None,
        tenant_weights: Callable[[], Awaitable[Mapping[str, int]]] | None = None,
        on_moved: Moved | None = None,
    ) -> None:
        super().__init__(scan_interval)
        self._coord = coordination
        self._elector = elector
        self._balancer = balancer
        self._catalog = catalog
        self._batch = batch_size
        self._look_past = look_past
        self._weights = weights  # (low, normal, high) for the weighted mode; None = strict
        self._tenant_weights = tenant_weights  # items per turn by tenant (a cached read)
        self._turns: Mapping[str, int] = {}  # this pass's tenant weights
        self._on_moved = on_moved  # told of each pass's moves once made (trace spans)
        self._again = False
        self._ahead = 1  # how deep the next pass reads the heads beside the workers; 0: not
        self.dispatched = 0
        self.refused = 0  # passes whose epoch a script refused

    async def wait_for_next_pass(self) -> None:
        if self._again:
            self._again = False
            return
        await self._coord.queues.wait_for_work(self.interval)

    async def run_once(self, now: float) -> None:
        epoch = self._elector.epoch
        if epoch is None:
            return
        self._turns = await self._tenant_weights() if self._tenant_weights else {}
        live, read = await self._fleet_and_heads()
        workers = [w for w in live if wants_work(w)]
        if not workers:
            return
        budget = min(self._batch, sum(w.free for w in workers))
        moves, depth, shallow = await self._moves(workers, budget, now, read)
        self._ahead = budget if shallow else 0
        if not moves:
            return
        try:
            moved = await self._coord.queues.assign(
                epoch, moves, within=depth, weights=self._turns
            )
        except StaleEpoch:
            self.refused += 1
            self._elector.demote()
            return
        self.dispatched += moved
        self._again = len(moves) >= budget
        if self._on_moved is not None:
            await self._on_moved(moves, now)

    async def _fleet_and_heads(self) -> tuple[list[WorkerInfo], tuple[Heads, int] | None]:
        """The live workers, and while the queues are shallow the heads read beside them
        ``_ahead`` deep (with that depth), in one round trip; None: read them after."""
        if not self._ahead:
            return await self._coord.registry.live_workers(), None
        # One task for the workers' read while this one reads the heads: both requests go
        # out before either answer is awaited (``gather`` would cost a task for each).
        fleet = asyncio.ensure_future(self._coord.registry.live_workers())
        try:
            heads = await self._read(self._ahead)
        except BaseException:
            fleet.cancel()
            await asyncio.wait([fleet])  # its own failure, if any, is this one's too
            raise
        return await fleet, (heads, self._ahead)

    async def _read(self, depth: int) -> Heads:
        return await self._coord.queues.heads(depth, self._turns, every=self._weights is not None)

    async def _moves(
        self, workers: list[WorkerInfo], budget: int, now: float, read: tuple[Heads, int] | None
    ) -> tuple[list[tuple[QueueItem, str]], int, bool]:
        """Plan the pass on the first ``budget`` ids of the queues (``read``, the heads read
        beside the workers, if it covers them); if held-back ids left slots unfilled, plan
        again on a window ``look_past`` deeper (the deeper read is paid only then). Each
        flow's cap (concurrency room, rate tokens taken) is decided once. Returns the moves,
        how deep the queues were read, and whether the first read held all the queues had."""
        caps: dict[Flow, int] = {}
        seen: set[Flow] = set()
        heads, depth = read if read is not None else (None, budget)
        if heads is not None and depth < budget and _held(heads) >= depth:
            heads, depth = None, budget  # shallower than the budget, and there may be more
        shallow: bool | None = None
        while True:
            heads = heads if heads is not None else await self._read(depth)
            if shallow is None:
                shallow = _held(heads) < depth
            items, paused = self._order(heads, budget)
            heads = None
            flows = {flow(i) for i in items}
            limits = await self._limits(flows - seen)
            seen |= flows
            caps |= await self._concurrency_caps(limits)
            moves = plan(items, workers, self._balancer, paused, caps, budget)
            rated = {t: s.rate_limit for t, s in limits.items() if s.rate_limit}
            if rated:
                caps |= await self._rate_tokens(moves, rated, now)
                moves = plan(items, workers, self._balancer, paused, caps, budget)
            if len(moves) >= budget or len(items) < depth or depth >= budget + self._look_past:
                return moves, depth, shallow  # filled, nothing further behind, or looked past
            depth = budget + self._look_past

    async def _limits(self, flows: set[Flow]) -> dict[Flow, TypeSpec]:
        """The flows in this pass that have a concurrency or rate limit, each by its own
        tenant's config of the type (configs are cached)."""
        limited = {}
        for key in flows:
            tenant, task_type = key
            spec = await self._catalog.spec(task_type, tenant)
            if spec is not None and (spec.concurrency_limit or spec.rate_limit):
                limited[key] = spec
        return limited

    async def _concurrency_caps(self, limits: dict[Flow, TypeSpec]) -> dict[Flow, int]:
        capped = {t: s.concurrency_limit for t, s in limits.items() if s.concurrency_limit}
        if not capped:
            return {}
        inflight = await self._coord.queues.inflight()
        return {t: max(0, limit - inflight.get(t, 0)) for t, limit in capped.items()}

    async def _rate_tokens(
        self, moves: list[tuple[QueueItem, str]], rated: dict[Flow, float], now: float
    ) -> dict[Flow, int]:
        """Tokens for the rate-limited flows, taken only for ids that found a worker, so no
        token is spent in vain; what each flow got becomes its cap for this pass."""
        wanted = Counter(flow(item) for item, _ in moves if flow(item) in rated)
        return {
            f: await self._coord.queues.take_tokens(flow_bucket(f), rated[f], n, now)
            for f, n in wanted.items()
        } | {f: 0 for f in rated if f not in wanted}

    def _order(self, heads: Heads, budget: int) -> tuple[list[QueueItem], set[str]]:
        """The heads of the unpaused priorities, in the order ``plan`` should consider them,
        and the paused names (``TaskQueues.heads`` read them together).

        Strict mode reads each priority ``depth`` deep, a lower one only while the ids so far
        (those of paused types aside) number fewer than ``depth``. Weighted mode reads every
        priority and puts each one's share of ``budget`` first, then the rest in strict order.
        """
        paused, by_priority = heads
        order = [p for p in STRICT_ORDER if p.label not in paused]
        if self._weights is None:
            return [i for p in order for i in by_priority.get(p, [])], paused
        total = sum(self._weights[p] for p in order) or 1
        shares = {p: math.ceil(budget * self._weights[p] / total) for p in order}
        first = [i for p in order for i in by_priority[p][: shares[p]]]
        return first + [i for p in order for i in by_priority[p][shares[p]:]], paused


def _held(heads: Heads) -> int:
    """How many ids a read of the heads returned. Fewer than it asked for means it read every
    priority to its end (a lower one is skipped only once as many ids as asked were read), so
    it holds all the queues had, however large the budget."""
    return sum(len(items) for items in heads.items.values())

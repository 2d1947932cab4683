"""Every Redis key Conveyor uses, in one place (docs/design.md §3).

All names sit under one prefix (default ``conveyor:``) so several deployments, or one test per
prefix, can share a Redis. Lua scripts never invent key names of their own: they receive them in
``KEYS`` or, where a script must discover workers at run time (``tracked``), the prefix and suffixes
built here in ``ARGV``.

=========================  ===========  ===================================================
key                        type         use
=========================  ===========  ===================================================
``queue:high|normal|low``  list         the default tenant's pending ``QueueItem`` encodings
``queue:{p}:{tenant}``     list         another tenant's pending items of priority ``p``
``ring:{p}``               list         tenants with work in priority ``p``; head = whose turn
``ring:{p}:used``          counter      how many items the head took of its current turn
``queued``                 set          every member of the priority queues (a lookup each)
``delayed``                sorted set   items due later (score = due time, epoch seconds)
``worker:{id}``            hash + TTL   what the worker advertises (``WorkerInfo``)
``workers``                sorted set   index of registered workers (score = heartbeat expiry)
``worker:{id}:queue``      list         items assigned to the worker, not yet taken
``worker:{id}:active``     list         items the worker took and runs (reliable fetch)
``scheduler:leader``       string + TTL ``holder|epoch`` of the current lease
``scheduler:epoch``        counter      fencing epoch, raised by every new lease
``scheduler:status``       hash + TTL   the leader's duties and when each last ran
``scheduler:node:{id}``    string + TTL a live scheduler (leader or standby): when it announced
``scheduler:nodes``        set          index of the ``scheduler:node:`` keys (pruned on read)
``task:cancel:{id}:{n}``   string + TTL cancel flag of attempt ``n`` of a running task
``cancel``                 channel      pub/sub push of cancel requests, ``{id}:{n}`` (flags
                                        are the truth)
``wake``                   list         at most one token: "work was enqueued" for the dispatcher
``paused``                 set          paused priorities and task types
``ratelimit:{type}``       hash + TTL   token bucket of a rate-limited type (tokens, ts;
                                        ``ratelimit:{type}@{tenant}`` outside the default
                                        tenant), or of a tenant's creates
                                        (``ratelimit:@tenant:{name}``)
=========================  ===========  ===================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.models import Priority
from conveyor.tenants import DEFAULT_TENANT

DEFAULT_PREFIX = "conveyor:"
DEFAULT_LEADER_KEY = "scheduler:leader"


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one prefix; pure string building, no I/O."""

    prefix: str = DEFAULT_PREFIX
    leader_key: str = DEFAULT_LEADER_KEY  # ``scheduler.leader_lock_key``

    def queue(self, priority: Priority, tenant: str = DEFAULT_TENANT) -> str:
        """One tenant's queue of one priority. The default tenant's is the name every queue
        had before tenants, so queues written before the upgrade are its queues and drain."""
        base = f"{self.prefix}queue:{priority.label}"
        return base if tenant == DEFAULT_TENANT else f"{base}:{tenant}"

    def ring(self, priority: Priority) -> str:
        return f"{self.prefix}ring:{priority.label}"

    def ring_used(self, priority: Priority) -> str:
        return f"{self.prefix}ring:{priority.label}:used"

    @property
    def fair(self) -> list[str]:
        """The nine keys of the fair queue layout, as ``lua/fair.lua`` expects them: the
        default tenant's queues (also the base of the other tenants' names), the rings and
        their turn counters, each indexed by ``int(priority)`` (low, normal, high)."""
        order = sorted(Priority)
        return [
            *(self.queue(p) for p in order),
            *(self.ring(p) for p in order),
            *(self.ring_used(p) for p in order),
        ]

    @property
    def queued(self) -> str:
        """A set of every member of the priority queues, so "is this item queued?" costs a
        SISMEMBER instead of a scan of the lists (the orphan sweep asks it of every PENDING
        task). Every script and pipeline that pushes to or pops from a priority queue keeps it,
        atomically with the list."""
        return f"{self.prefix}queued"

    @property
    def delayed(self) -> str:
        return f"{self.prefix}delayed"

    @property
    def workers(self) -> str:
        return f"{self.prefix}workers"

    @property
    def worker_prefix(self) -> str:
        """``worker:`` under the prefix; ``tracked`` appends ids and suffixes to it in Lua."""
        return f"{self.prefix}worker:"

    QUEUE_SUFFIX = ":queue"
    ACTIVE_SUFFIX = ":active"

    def worker(self, worker_id: str) -> str:
        return f"{self.worker_prefix}{worker_id}"

    def worker_queue(self, worker_id: str) -> str:
        return f"{self.worker_prefix}{worker_id}{self.QUEUE_SUFFIX}"

    def worker_active(self, worker_id: str) -> str:
        return f"{self.worker_prefix}{worker_id}{self.ACTIVE_SUFFIX}"

    def drain(self, worker_id: str) -> str:
        """A drain request for one worker process: its ``started_at``, with a TTL."""
        return f"{self.prefix}drain:{worker_id}"

    @property
    def leader(self) -> str:
        return f"{self.prefix}{self.leader_key}"

    @property
    def leader_status(self) -> str:
        return f"{self.prefix}scheduler:status"

    @property
    def epoch(self) -> str:
        return f"{self.prefix}scheduler:epoch"

    @property
    def scheduler_nodes(self) -> str:
        return f"{self.prefix}scheduler:nodes"

    def scheduler_node(self, holder: str) -> str:
        return f"{self.prefix}scheduler:node:{holder}"

    def cancel(self, task_id: str, attempt: int) -> str:
        """Per attempt, so a flag that outlives its attempt cannot stop the next one."""
        return f"{self.prefix}task:cancel:{task_id}:{attempt}"

    @property
    def cancel_channel(self) -> str:
        return f"{self.prefix}cancel"

    @property
    def wake(self) -> str:
        return f"{self.prefix}wake"

    @property
    def paused(self) -> str:
        return f"{self.prefix}paused"

    def bucket(self, task_type: str) -> str:
        return f"{self.prefix}ratelimit:{task_type}"

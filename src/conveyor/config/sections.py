"""The nested sections of the settings: scheduler, worker, task defaults, the HTTP executor,
webhooks, the HTTP servers and the keys of task-config secrets. Each field says what it costs
next to its bounds."""

from __future__ import annotations

import ipaddress
import os
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from conveyor.config.fields import FROZEN, Seconds, comma_list
from conveyor.models import Backoff


class SchedulerSettings(BaseModel):
    model_config = FROZEN

    # Failover after a leader dies takes at most the lease's TTL plus one standby retry
    # (about 5.5 s here, against a bar of 10 s). A shorter TTL fails over sooner but a leader
    # that cannot renew for 0.8 x TTL (a 4 s Redis stall or process pause) steps down; that
    # is safe (the epoch fences it) but costs a hand-over. Renewing is one Redis call per
    # interval; each standby retry is one GET.
    leader_lock_ttl: Seconds = Field(5.0, gt=0, le=3600)
    leader_renew_interval: Seconds = Field(1.0, gt=0, le=3600)
    leader_retry_interval: Seconds = Field(0.5, gt=0, le=3600)
    scan_interval: Seconds = Field(1.0, gt=0, le=3600)
    batch_size: int = Field(500, ge=1, le=10_000)
    # How far past held-back ids (paused type, concurrency cap, rate limit) a dispatch pass
    # looks, per priority, for ids that may run; runnable work further behind waits until the
    # held-back ids drain. Only a pass the queue heads could not fill reads the deeper window:
    # up to batch_size + look_past ids per priority (an LRANGE, decoded in the scheduler;
    # 1,000 ids cost about a millisecond).
    look_past: int = Field(1000, ge=0, le=100_000)
    timeout_check_interval: Seconds = Field(5.0, gt=0, le=3600)
    orphan_sweep_interval: Seconds = Field(30.0, gt=0, le=86_400)
    orphan_min_age: Seconds = Field(10.0, ge=0, le=86_400)
    load_balance_strategy: str = "least_task"
    priority_mode: Literal["strict", "weighted"] = "strict"
    priority_weights: tuple[int, int, int] = (1, 3, 6)  # low, normal, high
    timeout_grace: Seconds = Field(5.0, ge=0, le=3600)
    # The Redis key of the leader lease, under redis_prefix. Only schedulers that share it
    # compete for leadership; a different key per deployment keeps two apart on one Redis.
    leader_lock_key: str = Field("scheduler:leader", min_length=1, max_length=200)
    # Schedules (docs/design.md §9): the leader sleeps until the next schedule is due, but at
    # most this long, so a schedule put through the API is seen within it. Each wake is one
    # indexed query; a pass fires up to schedule_batch schedules per transaction.
    schedule_interval: Seconds = Field(1.0, gt=0, le=60)
    schedule_batch: int = Field(1000, ge=1, le=10_000)

    _split_weights = field_validator("priority_weights", mode="before")(comma_list)

    @model_validator(mode="after")
    def _renew_inside_ttl(self) -> SchedulerSettings:
        # After the model, so a default on either side is checked too (e.g. only the TTL set).
        if self.leader_renew_interval >= self.leader_lock_ttl:
            raise ValueError(
                f"leader_renew_interval ({self.leader_renew_interval}) must be shorter than "
                f"leader_lock_ttl ({self.leader_lock_ttl})"
            )
        return self


class WorkerSettings(BaseModel):
    model_config = FROZEN

    # A stable identity instead of host-pid-random: a restarted worker is the same worker in
    # `conveyor workers` and in its tasks' logs. ``id`` wins over ``name``; both unset: random.
    # Unique among live workers: a second one with the id of a live one is refused at start.
    id: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:@-]+$")
    name: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:@-]+$")
    capacity: int = Field(10, ge=1, le=100_000)
    prefetch: int | None = Field(None, ge=0, le=100_000)  # None: as many as capacity
    supported_types: tuple[str, ...] = ()
    # A killed worker's connections close at once; the recoverer reaps it once it is 1.5
    # intervals late and they stay closed as long again (its tasks rerun about 8 s after the
    # kill here). A frozen or unreachable one waits out the TTL (about 12 s; the bar is 30 s).
    # Each beat is one Redis pipeline and one SQL UPDATE per worker (100 workers: 50
    # UPDATEs/s). A worker whose event loop is blocked for a whole TTL is taken for dead and
    # its tasks rerun elsewhere (a shorter TTL makes that likelier); the store's
    # compare-and-set keeps the old attempt from finishing them.
    heartbeat_interval: Seconds = Field(2.0, gt=0, le=3600)
    heartbeat_ttl: Seconds = Field(10.0, gt=0, le=86_400)
    queue_poll_interval: Seconds = Field(1.0, gt=0, le=3600)
    graceful_shutdown_timeout: Seconds = Field(30.0, ge=0, le=86_400)
    thread_pool_size: int = Field(32, ge=1, le=1024)
    # Task processes for plain functions (isolation="process"): each is a Python interpreter
    # with the task modules imported (tens of MB), started on first need (a few hundred ms of
    # CPU) and kept; a plain task beyond this many waits for one, its timeout running. None:
    # ``capacity``, at most twice the CPU count (at least 4).
    process_pool_size: int | None = Field(None, ge=1, le=1024)
    # Modules whose functions a task config may name in ``executor_config.function``, besides
    # the functions registered with @app.task. Every function defined in a listed module is
    # code any admin API key can run on this worker, with a payload of its choosing.
    python_modules: tuple[str, ...] = ()
    weight: float = Field(1.0, gt=0, le=1_000_000)

    _split_types = field_validator("supported_types", mode="before")(comma_list)
    _split_modules = field_validator("python_modules", mode="before")(comma_list)

    @property
    def task_processes(self) -> int:
        """``process_pool_size``, or its default (see the setting)."""
        if self.process_pool_size is not None:
            return self.process_pool_size
        return min(self.capacity, max(4, 2 * (os.cpu_count() or 1)))

    @model_validator(mode="after")
    def _ttl_above_interval(self) -> WorkerSettings:
        if self.heartbeat_ttl <= self.heartbeat_interval:
            raise ValueError(
                f"heartbeat_ttl ({self.heartbeat_ttl}) must be longer than heartbeat_interval "
                f"({self.heartbeat_interval})"
            )
        return self


class TaskDefaults(BaseModel):
    model_config = FROZEN

    timeout: Seconds = Field(300.0, gt=0, le=7 * 86_400)
    max_retries: int = Field(3, ge=0, le=100)
    backoff_base: Seconds = Field(1.0, ge=0, le=86_400)
    backoff_factor: float = Field(2.0, ge=1, le=100)
    backoff_cap: Seconds = Field(300.0, ge=0, le=7 * 86_400)
    backoff_jitter: float = Field(0.2, ge=0, le=1)

    @property
    def backoff(self) -> Backoff:
        return Backoff(
            self.backoff_base, self.backoff_factor, self.backoff_cap, self.backoff_jitter
        )


class HttpExecutorSettings(BaseModel):
    model_config = FROZEN

    allowed_hosts: tuple[str, ...] = ()
    max_connections: int = Field(100, ge=1, le=10_000)

    _split_hosts = field_validator("allowed_hosts", mode="before")(comma_list)


class WebhookSettings(BaseModel):
    """Delivery of final-state callbacks (``conveyor.webhooks``)."""

    model_config = FROZEN

    # Deliveries in flight at once, all destinations together; each holds one connection.
    concurrency: int = Field(16, ge=1, le=1000)
    # In flight at once to one host:port: the most of `concurrency` a slow or dead receiver can
    # hold. Higher drains one busy receiver faster; lower protects everyone else from it.
    per_destination: int = Field(4, ge=1, le=1000)
    # The most one try may take in all (resolve, connect, send, answer); a slower receiver is cut
    # and retried. Longer suits slow receivers but lets each hold its slot that long.
    deadline: Seconds = Field(10.0, gt=0, le=300)
    # Tries per delivery; between them backoff_base doubling up to backoff_cap (±20 %), during
    # which the delivery holds no slot.
    attempts: int = Field(5, ge=1, le=50)
    backoff_base: Seconds = Field(1.0, ge=0, le=3600)
    backoff_cap: Seconds = Field(60.0, ge=0, le=86_400)
    # Deliveries held in memory (queued, in flight or between tries), in all and per destination;
    # past either one a new delivery is dropped and logged. The per-destination cap keeps a stuck
    # receiver's backlog from filling the shared one.
    backlog: int = Field(10_000, ge=1, le=1_000_000)
    destination_backlog: int = Field(1_000, ge=1, le=1_000_000)


class MetricsSettings(BaseModel):
    """What the Prometheus metrics carry (``conveyor.observability.metrics``)."""

    model_config = FROZEN

    # Add a `tenant` label to the per-task counters and histograms. Off by default: each
    # tenant multiplies every task series by one more (tenants times types times statuses), which a
    # Prometheus with many tenants pays for in memory.
    tenant_label: bool = False


class ServerSettings(BaseModel):
    """What the HTTP servers (the API, and the metrics port) accept from the network."""

    model_config = FROZEN

    # Host names the API answers to (``Host`` header, port ignored); any other is refused with
    # 421, so a DNS-rebinding page cannot reach a local server. Empty: the loopback names plus
    # the bound address unless it is a wildcard. Behind a load balancer list the public name(s);
    # ``*`` accepts every Host (only sensible when every caller needs a key).
    allowed_hosts: tuple[str, ...] = ()
    # Origins (``https://console.example.com``) besides the server's own that browsers may send
    # state-changing requests from; any other ``Origin`` on POST/PUT/PATCH/DELETE gets 403.
    allowed_origins: tuple[str, ...] = ()
    # Addresses or networks (``10.0.0.0/8``) that may scrape the API's /metrics without a key.
    metrics_scrapers: tuple[str, ...] = ()
    # A connection must deliver a request's headers within this many seconds of opening (or of
    # the request's first byte): until then each slow or silent client holds an open file.
    header_timeout: Seconds = Field(10.0, gt=0, le=3600)
    # A request's headers may take this many bytes (431 beyond): memory spent on a caller that
    # has not been authenticated yet.
    max_header_bytes: int = Field(65_536, ge=1024, le=16 * 1_048_576)
    # The whole body must arrive within this many seconds (408 otherwise): a client slower than
    # max_body_bytes / body_timeout at the largest bodies is cut off.
    body_timeout: Seconds = Field(30.0, gt=0, le=3600)
    # Idle time allowed between requests on a kept-alive connection.
    keep_alive_timeout: int = Field(5, ge=1, le=3600)
    # Open connections (idle ones included) past which requests are answered 503 at once; each
    # costs an open file and a few kB. Clamped at start to what the open-file limit allows.
    max_connections: int = Field(4096, ge=2, le=1_000_000)

    _split_lists = field_validator(
        "allowed_hosts", "allowed_origins", "metrics_scrapers", mode="before"
    )(comma_list)

    @field_validator("metrics_scrapers")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an address or network: {exc}") from None
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if "://" not in item or item.rstrip("/").count("/") > 2:
                raise ValueError(f"{item!r} is not an origin like https://console.example.com")
        return tuple(item.rstrip("/").lower() for item in value)


class SecretsSettings(BaseModel):
    """The Fernet keys that seal the secret fields of task configs (``conveyor.sealing``)."""

    # Inputs stay out of error texts and the repr: these are the keys themselves.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    # The first key seals, every key opens: to rotate, put a new key first, run
    # `conveyor secrets rotate`, then drop the old one. The same list on every api and worker.
    # Empty: a key file beside a SQLite database, else storing a secret is refused.
    keys: tuple[str, ...] = Field((), repr=False)

    _split_keys = field_validator("keys", mode="before")(comma_list)

    @field_validator("keys")
    @classmethod
    def _fernet_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            return value
        from cryptography.fernet import Fernet  # only when keys are set: not every process

        for index, key in enumerate(value):
            try:
                Fernet(key)
            except ValueError:
                raise ValueError(
                    f"key {index + 1} of {len(value)} is not a Fernet key (32 bytes in url-safe "
                    "base64; make one with `conveyor secrets generate-key`)"
                ) from None
        return value


_DAY = 86_400.0


class RetentionSettings(BaseModel):
    """How long finished rows are kept before the leader's purger deletes them
    (``scheduler.retention``). Every duration counts from the row's own time (a task's
    ``finished_at``, a log's ``at``); 0 keeps those rows forever."""

    model_config = FROZEN

    # Tasks that ended SUCCESS, with their logs.
    succeeded: Seconds = Field(7 * _DAY, ge=0, le=100 * 365 * _DAY)
    # Tasks that ended in any other final status (FAILED, TIMEOUT, CANCELLED), with their
    # logs: kept longer, as they are the ones someone comes back to look at.
    failed: Seconds = Field(30 * _DAY, ge=0, le=100 * 365 * _DAY)
    # Log rows older than this go even when their task is kept (a long-lived or often retried
    # task); a purged task's logs go with it whatever this says. The default equals ``failed``,
    # so with the defaults no kept finished task loses its history.
    logs: Seconds = Field(30 * _DAY, ge=0, le=100 * 365 * _DAY)
    # Audit records (the audit log's ``at``).
    audit: Seconds = Field(365 * _DAY, ge=0, le=100 * 365 * _DAY)
    # Schedule fire history rows, from when the fire was recorded (``recorded_at``); a fire
    # still buffered (waiting for the running task) is kept however old.
    schedule_fires: Seconds = Field(30 * _DAY, ge=0, le=100 * 365 * _DAY)
    # Workflow rows (and their node rows), once this has passed since the workflow was
    # created and since every one of its tasks ended (or was purged); a workflow with a task
    # still to run is kept however old. Its tasks go by ``succeeded`` / ``failed``.
    workflows: Seconds = Field(30 * _DAY, ge=0, le=100 * 365 * _DAY)
    # Rows one batch deletes at most, per target: one short transaction each (its row locks
    # last one batch). Larger purges faster but holds more rows in memory when archiving.
    batch_size: int = Field(1000, ge=1, le=50_000)
    # Batches per target in one pass; a pass that hit the cap goes on a second later.
    batches_per_pass: int = Field(20, ge=1, le=10_000)
    # Time between passes once nothing is left to purge.
    interval: Seconds = Field(60.0, gt=0, le=_DAY)
    # A directory to append each batch to as JSON lines (``task-2026-12-01.jsonl``), fsynced
    # before the batch is deleted; unset: rows are deleted without a copy.
    archive_dir: str | None = Field(None, min_length=1)

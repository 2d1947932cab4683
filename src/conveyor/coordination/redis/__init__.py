"""The Redis coordination backend (docs/design.md §3): the five contracts of ``protocol`` over one
client, with every multi-key move in a Lua script (``coordination/lua/``) so it is atomic.

The in-process backend (``local``) is the reference semantics; this package matches it, with the
differences written next to the code that has them (see ``RedisTaskQueues.enqueue`` and
``RedisTaskQueues.tracked``).

One module per contract (``queues``, ``worker_queues``, ``registry``, ``lease``, ``cancels``),
what they share in ``backend``, and URLs, Sentinel and assembly in ``connection``.
"""

from __future__ import annotations

from conveyor.coordination.redis.connection import connect_redis

__all__ = ["connect_redis"]

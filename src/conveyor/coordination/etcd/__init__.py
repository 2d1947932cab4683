"""The etcd coordination backend (docs/design.md §13): the five contracts of ``protocol`` on
etcd v3, every multi-key move one transaction, waits as watches.

Client library: ``aetcd`` (PyPI, asyncio-native, maintained: 1.0.0 in 2026, on grpcio's
``grpc.aio``). Compared with it: ``etcd3`` and its forks are synchronous (threads) and
unmaintained since 2020; ``aioetcd3`` (2020) and ``async-etcd`` (0.0.0) are abandoned;
``etcd3-async-client`` and ``etcd3aio`` are young single-author releases; ``etcd3gw`` /
``async-etcd3gw`` go through the JSON gateway (base64 bodies, no streaming watch reuse). We
use aetcd's generated etcd v3 stubs and messages (``aetcd.rpc``) over our own channel
(``client``), because ``aetcd.Client`` dials one ``host:port`` without TLS; the stubs are the
part that must track etcd's protocol, and aetcd maintains them.

Modules: ``client`` (the calls), ``layout`` (key names), ``plan`` (fair-queue compare-and-swap),
``queues``, ``workers`` (worker queues and registry), ``lease`` (leader and cancels),
``connection`` (URLs and assembly).
"""

from __future__ import annotations

from conveyor.coordination.etcd.connection import connect_etcd, is_etcd_url

__all__ = ["connect_etcd", "is_etcd_url"]

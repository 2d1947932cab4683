"""Run inside a peer's virtualenv (cwd ``bench/``): ``python -m peers.driver PEER latency
--samples N --gap S`` or ``python -m peers.driver PEER enqueue --count N``; prints one JSON line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
import uuid

from peers import _probe


def latency(app: object, samples: int, gap: float, warmup: int) -> dict[str, object]:
    redis = _probe.client()
    seconds: list[float] = []
    lost = 0
    for i in range(samples + warmup):
        token = uuid.uuid4().hex
        key = f"{_probe.PROBE_KEY}:lat:{token}"
        sent = time.time()
        app.submit_stamp(token)  # type: ignore[attr-defined]
        item = redis.blpop([key], timeout=5)
        if item is None:
            lost += 1
        elif i >= warmup:
            seconds.append(float(item[1]) - sent)
        time.sleep(max(0.0, sent + gap - time.time()))
    return {"latencies": seconds, "lost": lost}


def enqueue(app: object, count: int) -> dict[str, object]:
    began = time.perf_counter()
    app.enqueue_noops(count)  # type: ignore[attr-defined]
    return {"enqueued": count, "seconds": time.perf_counter() - began}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("peer", choices=["celery", "dramatiq", "rq", "arq"])
    parser.add_argument("what", choices=["latency", "enqueue"])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--gap", type=float, default=0.02)
    parser.add_argument("--count", type=int, default=20_000)
    args = parser.parse_args()
    app = importlib.import_module(f"peers.{args.peer}_app")
    if args.what == "latency":
        out = latency(app, args.samples, args.gap, args.warmup)
    else:
        out = enqueue(app, args.count)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

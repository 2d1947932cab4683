"""Simulated workers for the scale figure (``extras.scale``): ``--workers K`` Conveyor
``Worker`` objects of the configured capacity in this one process, sharing one store, one
coordination connection and one executor registry. They run only the built-in ``echo`` (async,
returns at once), so what they cost the scheduler is fetching and finishing, not task code:
a hundred real worker processes would not fit on this machine beside the scheduler.

    .venv/bin/python bench/sim_workers.py --workers 25     # CONVEYOR_* from the environment

Runs until SIGTERM, then stops every worker as a worker process does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from conveyor.bootstrap import build, executors
from conveyor.config import load_settings
from conveyor.worker import Worker


async def main(count: int) -> None:
    settings = load_settings()
    parts = await build(settings)
    shared = executors(settings, parts.registrations, parts.keyring)
    workers = [
        Worker(f"sim-{os.getpid()}-{i}", settings, parts.store, parts.coordination,
               parts.catalog, shared, parts.outcomes)
        for i in range(count)
    ]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        for worker in workers:
            await worker.start()
        print(f"{count} simulated workers started", flush=True)
        await stop.wait()
    finally:
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)
        await parts.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, required=True)
    asyncio.run(main(parser.parse_args().workers))

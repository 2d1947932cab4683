"""The ``conveyor`` script's entry: the CLI imported with the cyclic collector off.

Importing the command tree (Typer, pydantic's settings models, rich) makes many long-lived
objects and no garbage, yet sets off ~80 collections, and the first one after it walks every
object it made: ~10 % of the import's CPU, paid by every command and every process start. Off
while it is imported, then frozen (it lives as long as the process: no collection need walk
it again) and back on. A role's start does the same around the roles (``cli.run``,
``process.Process.run``). Outside ``conveyor.cli``: importing any module of that package
imports the whole tree first.
"""

from __future__ import annotations

import gc


def main() -> None:
    gc.disable()
    from conveyor.cli import main as run

    gc.freeze()
    gc.enable()
    run()

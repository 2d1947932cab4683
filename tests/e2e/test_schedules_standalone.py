"""Schedules end to end in ``conveyor standalone``: a schedule declared with ``@app.periodic``
is synced at start and fires every second (tasks that succeed), the CLI lists, triggers,
backfills, pauses and removes, and a restart neither duplicates nor forgets it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conveyor.client import Client
from tests.e2e.test_standalone import run_cli, standalone, wait_until

pytestmark = pytest.mark.slow

MODULE = '''
from conveyor import Conveyor

app = Conveyor()


@app.periodic("* * * * * *", name="every-second", overlap="allow")
async def tick() -> dict:
    return {"ticked": True}
'''


def succeeded(client: Client, at_least: int) -> bool:
    return sum(1 for t in client.list(task_type="tick") if t.status == "SUCCESS") >= at_least


def test_a_declared_schedule_fires_and_the_cli_operates_it(tmp_path: Path) -> None:
    (tmp_path / "ticks.py").write_text(textwrap.dedent(MODULE))
    args = ("--app", "ticks:app")
    with standalone(tmp_path, tmp_path / "c.db", args=args) as server, \
            Client(server.url, timeout=10) as client:
        wait_until(lambda: succeeded(client, 3), 30, "three fires to succeed")
        url = ("--url", server.url)
        listed = run_cli("schedules", "list", "--json", *url)
        assert listed.returncode == 0, listed.stderr
        assert '"every-second"' in listed.stdout and '"source": "code"' in listed.stdout
        fired = run_cli("schedules", "trigger", "every-second", "--json", *url)
        assert fired.returncode == 0 and '"kind": "manual"' in fired.stdout, fired.stderr
        back = run_cli("schedules", "backfill", "every-second", "--from",
                       "2026-01-01T00:00:00", "--to", "2026-01-01T00:00:09", *url)
        assert back.returncode == 0 and "10 fires in the range, 10 tasks created" in back.stderr
        paused = run_cli("schedules", "pause", "every-second", *url)
        assert paused.returncode == 0, paused.stderr
        shown = run_cli("schedules", "show", "every-second", *url)
        assert shown.returncode == 0 and "fired" in shown.stdout, shown.stderr
        missing = run_cli("schedules", "show", "nope", *url)
        assert missing.returncode != 0 and "no schedule named 'nope'" in missing.stderr
        server.stop()
    with standalone(tmp_path, tmp_path / "c.db", args=args) as again, \
            Client(again.url, timeout=10) as client:
        found = client.schedules.list()["schedules"]
        assert [s["name"] for s in found] == ["every-second"] and found[0]["paused"]
        assert run_cli("schedules", "rm", "every-second", "--url", again.url).returncode == 0
        assert client.schedules.list()["schedules"] == []

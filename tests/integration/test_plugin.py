"""Plug-ins through entry points: the example package, installed with pip, is found and runs.

CI installs ``examples/plugin`` (``pip install --no-build-isolation --no-deps ./examples/plugin``);
when it is missing, the fixture below installs it the same way, so the test also works from a
fresh checkout.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

from conveyor.config import Settings
from conveyor.errors import ConfigError, PermanentError
from conveyor.models import Priority, Task, TaskStatus
from conveyor.plugins import EXECUTORS, LISTENERS, load_entry_points

PLUGIN_DIR = Path(__file__).resolve().parents[2] / "examples" / "plugin"


@pytest.fixture(scope="module")
def installed_plugin() -> None:
    try:
        distribution("conveyor-example-plugin")
        return
    except PackageNotFoundError:
        pass
    base = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", str(PLUGIN_DIR)]
    # Without build isolation setuptools comes from the venv (no download); fall back to an
    # isolated build for a venv that has no setuptools.
    for command in ([*base, "--no-build-isolation"], base):
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode == 0:
            break
    else:
        pytest.fail(f"could not install {PLUGIN_DIR}:\n{done.stdout}\n{done.stderr}")
    importlib.invalidate_caches()


def make_task(payload: dict[str, object]) -> Task:
    now = time.time()
    return Task(
        id="01PLUGINTASK",
        task_type="reverse",
        priority=Priority.NORMAL,
        payload=payload,
        status=TaskStatus.PROCESSING,
        max_retries=3,
        timeout=5,
        created_at=now,
        run_at=now,
        attempt=2,
    )


@pytest.mark.usefixtures("installed_plugin")
async def test_installed_plugin_is_discovered_and_runs_a_task() -> None:
    plugins = load_entry_points(EXECUTORS)
    factory = plugins["reverse"]
    assert callable(factory)
    executor = factory(Settings())
    try:
        result = await executor.execute(make_task({"text": "conveyor"}), {"upper": True})
        assert result == {"reversed": "ROYEVNOC", "attempt": 2}
        with pytest.raises(PermanentError):
            await executor.execute(make_task({}), {})
    finally:
        await executor.close()


def _fake_distribution(root: Path, name: str, entry_points: str) -> None:
    """A bare ``.dist-info`` on ``sys.path`` is all importlib.metadata needs to see one."""
    info = root / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    importlib.invalidate_caches()


def test_a_plugin_that_fails_to_import_is_named(site: Path) -> None:
    _fake_distribution(
        site, "broken_plugin", "[conveyor.listeners]\nbroken = no_such_module_xyz:Listener\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_entry_points(LISTENERS)
    message = str(caught.value)
    assert "'broken'" in message
    assert "broken_plugin 0.1" in message
    assert "no_such_module_xyz" in message
    assert "failed to load" in message


def test_two_plugins_claiming_one_name_are_refused(site: Path) -> None:
    _fake_distribution(site, "one_plugin", "[conveyor.load_balancers]\nsame = json:dumps\n")
    _fake_distribution(site, "two_plugin", "[conveyor.load_balancers]\nsame = json:loads\n")
    with pytest.raises(ConfigError, match="claimed twice"):
        load_entry_points("conveyor.load_balancers")


def test_an_empty_group_loads_nothing() -> None:
    assert load_entry_points("conveyor.nothing_registered_here") == {}

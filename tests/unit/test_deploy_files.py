"""deploy/: the Dockerfile, the Kubernetes manifests and the systemd units say what compose.yaml
says (the same commands, ports, probes and stop timings), and each is valid for its tool as
far as this machine can tell (YAML; ``systemd-analyze verify`` when present)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.config import Settings
from tests.hosts.compose import DEPLOY, load
from tests.support.processes import conveyor_command

ROLES = ("api", "scheduler", "worker")


def manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in manifests() if d["kind"] == kind}


def served_port(command: list[str]) -> int:
    """The port a Conveyor command serves its probes on."""
    flag = "--port" if command[1] == "api" else "--metrics-port"
    return int(command[command.index(flag) + 1])


def drain() -> float:
    return Settings().worker.graceful_shutdown_timeout


def test_compose_has_the_recommended_topology() -> None:
    services = load()
    assert {n: services[n].replicas for n in ROLES} == {"api": 2, "scheduler": 3, "worker": 3}
    assert {"redis", "mariadb", "migrate"} <= set(services)
    assert services["migrate"].command == ["conveyor", "migrate"]
    for role in ROLES:
        needs = services[role].raw["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        assert "/readyz" in " ".join(services[role].raw["healthcheck"]["test"])
        assert str(served_port(services[role].command)) in " ".join(
            services[role].raw["healthcheck"]["test"])
    assert services["worker"].seconds("stop_grace_period") > drain()


def test_the_image_is_multi_stage_non_root_and_runs_conveyor() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    assert "COPY --from=build" in text
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and not user[-1].startswith(("root", "0:", "0")), user
    assert re.search(r'^CMD \["conveyor", "api"', text, re.M)
    for part in ("migrations", "console/static"):
        assert part in text, f"the build stage checks that {part} are in the image"


@pytest.mark.parametrize("role", ROLES)
def test_each_deployment_runs_the_compose_command_with_its_probes(role: str) -> None:
    compose = load()[role]
    deployment = of_kind("Deployment")[f"conveyor-{role}"]
    assert deployment["spec"]["replicas"] == compose.replicas
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == compose.command
    port = served_port(compose.command)
    assert port in [p["containerPort"] for p in container["ports"]]
    ready, alive = container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]
    assert (ready["path"], ready["port"]) == ("/readyz", port)
    assert (alive["path"], alive["port"]) == ("/healthz", port)
    assert pod["securityContext"]["runAsNonRoot"] is True
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    if role == "worker":
        assert pod["terminationGracePeriodSeconds"] > drain()


def test_the_migrate_job_and_the_scheduler_budget() -> None:
    job = of_kind("Job")["conveyor-migrate"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == load()["migrate"].command
    budget = of_kind("PodDisruptionBudget")["conveyor-scheduler"]
    schedulers = of_kind("Deployment")["conveyor-scheduler"]
    selector = schedulers["spec"]["selector"]["matchLabels"]
    assert budget["spec"]["selector"]["matchLabels"] == selector
    assert 1 <= budget["spec"]["minAvailable"] < schedulers["spec"]["replicas"]


def test_every_pod_reads_the_shared_settings() -> None:
    names = {(k, n) for k in ("ConfigMap", "Secret") for n in of_kind(k)}
    assert names == {("ConfigMap", "conveyor"), ("Secret", "conveyor")}
    pods = [d["spec"]["template"]["spec"] for d in manifests()
            if d["kind"] in ("Deployment", "Job")]
    for pod in pods:
        for container in pod["containers"]:
            refs = {next(iter(r)) for r in container["envFrom"]}
            assert refs == {"configMapRef", "secretRef"}


def units() -> dict[str, str]:
    return {p.stem.removeprefix("conveyor-"): p.read_text()
            for p in (DEPLOY / "systemd").glob("*.service")}


def directive(text: str, name: str) -> str:
    found = re.findall(rf"^{name}=(.*)$", text, re.M)
    assert found, f"no {name}="
    return found[-1].strip()


@pytest.mark.parametrize("role", ROLES)
def test_each_unit_runs_the_compose_command_and_stops_gracefully(role: str) -> None:
    text = units()[role]
    start = directive(text, "ExecStart").split()
    assert ["conveyor", *start[1:]] == load()[role].command
    assert directive(text, "KillSignal") == "SIGTERM"
    assert directive(text, "User") != "root"
    if role == "worker":
        assert float(directive(text, "TimeoutStopSec")) > drain()
        assert directive(text, "KillMode") == "mixed"  # task processes finish during the drain


def test_units_pass_systemd_analyze(tmp_path: Path) -> None:
    """``systemd-analyze verify`` with the console script of this venv in place of
    /opt/conveyor (it checks the program exists); parsed above when it is not installed."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed; the units are parsed above")
    paths = []
    for role, text in units().items():
        path = tmp_path / f"conveyor-{role}.service"
        path.write_text(text.replace("/opt/conveyor/bin/conveyor", conveyor_command()))
        paths.append(str(path))
    done = subprocess.run(["systemd-analyze", "verify", *paths], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr

"""``deploy/compose.yaml`` read as Compose would: merge keys, ``${VAR:-default}``, replicas.

No container engine runs here, so the tests take each Conveyor service's command and
environment from the file and start them as processes (``test_deploy.py``), and compare them
with the Kubernetes manifests and systemd units (``tests/unit/test_deploy_files.py``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """``${NAME}`` and ``${NAME:-default}`` as Compose substitutes them."""
    return VARIABLE.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    environment: dict[str, str]
    replicas: int
    raw: dict[str, Any]

    @property
    def conveyor(self) -> bool:
        return bool(self.command) and self.command[0] == "conveyor"

    def seconds(self, key: str) -> float:
        """A Compose duration (``45s``, ``1m30s``) of ``key``, in seconds."""
        text = str(self.raw[key])
        parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s|ms)", text)
        scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
        return sum(float(n) * scale[u] for n, u in parts)


def image_environment(dockerfile: Path = DEPLOY / "Dockerfile") -> dict[str, str]:
    """The ``ENV`` of the image (the last stage's), but ``PATH``: a container starts with it."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    last_stage = text.rsplit("\nFROM ", 1)[-1]
    env: dict[str, str] = {}
    for line in last_stage.splitlines():
        if line.startswith("ENV "):
            env.update(re.findall(r"(\w+)=(\S+)", line))
    env.pop("PATH", None)
    return env


def load(path: Path = COMPOSE, env: dict[str, str] | None = None) -> dict[str, Service]:
    env = dict(os.environ) if env is None else env
    data = yaml.safe_load(path.read_text())
    services: dict[str, Service] = {}
    for name, spec in data["services"].items():
        command = spec.get("command") or []
        assert isinstance(command, list), f"{name}: command must be a list (exec form)"
        environment = {k: interpolate(str(v), env) for k, v in
                       (spec.get("environment") or {}).items()}
        replicas = int((spec.get("deploy") or {}).get("replicas", 1))
        services[name] = Service(name, [str(c) for c in command], environment, replicas, spec)
    return services

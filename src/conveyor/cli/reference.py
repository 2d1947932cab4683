"""The settings reference, generated from the settings model: every setting with its type,
default, bounds and environment variable. ``conveyor config reference`` prints it; it is
``docs/settings.md``, and a test keeps the two in step."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, BeforeValidator
from pydantic.fields import FieldInfo

from conveyor.config import Settings, parse_duration

BOUNDS = (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"), ("min_length", "length ≥"),
          ("max_length", "length ≤"), ("pattern", "matches"))
SECRET = frozenset({"webhook_secret", "secrets.keys"})
URLS = frozenset({"database_url", "redis_url", "coordination_url"})


@dataclass(frozen=True)
class Entry:
    path: str
    type: str
    default: Any
    bounds: str

    @property
    def env(self) -> str:
        return "CONVEYOR_" + self.path.upper().replace(".", "__")


def entries(model: type[BaseModel] = Settings, prefix: str = "") -> Iterator[Entry]:
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from entries(annotation, f"{prefix}{name}.")
            continue
        yield Entry(f"{prefix}{name}", type_name(annotation, field), field.default,
                    bounds(field))


def type_name(annotation: Any, field: FieldInfo | None = None) -> str:
    if field is not None and any(
        isinstance(m, BeforeValidator) and m.func is parse_duration for m in field.metadata
    ):
        return "duration (10, 10s, 100ms, 1m)"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        named = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(named) + (" or none" if type(None) in args else "")
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {type_name(args[0])}"
        return f"{len(args)} x {type_name(args[0])}"
    return getattr(annotation, "__name__", str(annotation))


def bounds(field: FieldInfo) -> str:
    found = []
    for meta in field.metadata:
        for attribute, sign in BOUNDS:
            value = getattr(meta, attribute, None)
            if value is not None:
                found.append(f"{sign} {value}")
    return ", ".join(found)


def shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value) or "(empty)"
    return str(value)


def render() -> str:
    lines = [
        "# Settings reference",
        "",
        "Generated from `src/conveyor/config/` by `conveyor config reference > "
        "docs/settings.md`; a test fails when the two differ.",
        "",
        "Layers, lowest first: built-in defaults < `conveyor.yaml` (or `--config`, or "
        "`CONVEYOR_CONFIG`) < environment < command-line flags. `conveyor config show` prints "
        "the effective value of each setting and the layer it came from. Nested keys are "
        "yaml sections (`worker:` / `capacity:`), and `__` in the environment "
        "(`CONVEYOR_WORKER__CAPACITY`). Lists may be given as one comma-separated string.",
        "",
        "| setting | type | default | bounds | environment |",
        "|---|---|---|---|---|",
    ]
    for e in entries():
        lines.append(f"| `{e.path}` | {e.type} | `{shown(e.default)}` | {e.bounds} | "
                     f"`{e.env}` |")
    lines += ["", "`http_executor.allowed_hosts` is also read from `CONVEYOR_HTTP_ALLOWED_HOSTS`."]
    return "\n".join(lines) + "\n"

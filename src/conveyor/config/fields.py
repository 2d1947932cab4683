"""What the settings sections share: frozen models, comma-separated lists, durations."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    ConfigDict,
)

FROZEN = ConfigDict(frozen=True, extra="forbid")


def comma_list(cls: type, value: Any) -> Any:
    """A list setting given as one string (``echo,sleep`` in the environment or yaml)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, None: 1.0}


def parse_duration(value: Any) -> Any:
    """``10s``, ``100ms``, ``1m``, ``2h``, ``1d`` or plain seconds (``10``, ``0.5``) → seconds.

    The seeds' yaml writes durations with units; anything else is left for the field's own
    validation to reject, naming the setting.
    """
    if isinstance(value, str):
        found = _DURATION.match(value)
        if found is None:
            raise ValueError(f"{value!r} is not a duration (e.g. 10, 10s, 100ms, 1m, 2h)")
        return float(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    return value


Seconds = Annotated[float, BeforeValidator(parse_duration)]

"""Tenants: the unit of isolation between the teams that share one Conveyor.

Every API key, task and task config belongs to exactly one tenant. Installs from before tenancy
and keys made without ``--tenant`` belong to ``DEFAULT_TENANT``. A tenant name follows the task
type's rules, shorter: it is part of queue keys and metric labels, so it stays plain text.
"""

from __future__ import annotations

import re

from conveyor.errors import ValidationError

DEFAULT_TENANT = "default"
TENANT_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


def check_tenant(name: object) -> str:
    """``name`` when it is a valid tenant name, else a ``ValidationError`` saying why."""
    if not isinstance(name, str) or not TENANT_PATTERN.fullmatch(name):
        raise ValidationError(
            f"tenant {name!r} must match {TENANT_PATTERN.pattern} "
            "(lower-case letters, digits, '_', '.', '-'; at most 64 characters)"
        )
    return name

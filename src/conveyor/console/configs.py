"""Editing a task config from the console (admin keys): the executor and its settings (JSON),
timeout, retries, priority, concurrency and rate limit, enabled. The settings are shown
masked, as a GET answers them, and sent back so: a secret left as ``"***"`` keeps the stored
value (still sealed; only a new value is sealed anew), and a secret is never written into the
page. The body goes through the API's own ``TaskConfigIn`` and ``TaskService.put_config``, so
the bounds, the executor's checks, the error texts and the audit row are the API's."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import orjson
import pydantic
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from conveyor.api.auth import acting
from conveyor.api.schemas import TaskConfigIn, shown_config
from conveyor.api.tenancy import home
from conveyor.apikeys import Scope
from conveyor.console import session
from conveyor.console.routing import ConsoleRoute
from conveyor.console.views import Viewer, Viewing
from conveyor.errors import ValidationError
from conveyor.executors.rules import known_executors
from conveyor.models import Priority, TaskConfig, check_task_type

router = APIRouter(route_class=ConsoleRoute)
NUMBERS: dict[str, type[int] | type[float]] = {
    "timeout_seconds": float, "max_retries": int, "concurrency_limit": int, "rate_limit": float,
}


async def _stored(who: Viewer, task_type: str) -> TaskConfig:
    return await who.service.get_config(check_task_type(task_type), home(who.principal, None))


def edited(stored: TaskConfig, fields: dict[str, str], now: float) -> TaskConfig:
    """``stored`` with the form's limits (pure but for the model's checks)."""
    body: dict[str, Any] = {
        "executor": fields.get("executor", "").strip() or stored.executor,
        "executor_config": settings(fields.get("executor_config"), stored),
        "enabled": fields.get("enabled") == "on",
        "priority": fields.get("priority") or None,
    }
    for name, kind in NUMBERS.items():
        text = fields.get(name, "").strip()
        try:
            body[name] = kind(text) if text else None
        except ValueError:
            raise ValidationError(f"{name}: not a number: {text!r}") from None
    try:
        parsed = TaskConfigIn.model_validate(body)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        raise ValidationError(f"{first['loc'][0]}: {first['msg']}") from None
    # The form does not edit the backoff: it stays as stored.
    return replace(parsed.to_config(stored.task_type, now, stored.tenant), backoff=stored.backoff)


def settings(text: str | None, stored: TaskConfig) -> Any:
    """The executor's settings from the form's JSON (absent: as stored, masked)."""
    if text is None or not text.strip():
        return shown_config(stored.executor, stored.executor_config)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"executor_config: not JSON ({exc})") from None


@router.get("/configs/{task_type}", response_class=HTMLResponse)
async def config_form(task_type: str, who: Viewing) -> Response:
    config = await _stored(who, task_type)
    return who.render("config.html", config=config, priorities=[p.label for p in Priority],
                      shown=shown_config(config.executor, config.executor_config),
                      can_edit=who.principal.scope >= Scope.ADMIN,
                      executors=sorted(known_executors()))


@router.post("/configs/{task_type}")
async def config_save(task_type: str, who: Viewing) -> Response:
    fields = await session.checked_form(who.request)
    who.need(who.principal.scope >= Scope.ADMIN, "change task configs")
    config = edited(await _stored(who, task_type), fields, time.time())
    await who.service.put_config(config, actor=acting(who.principal, who.request))
    return RedirectResponse(f"{session.PREFIX}/configs/{config.task_type}", status_code=303)

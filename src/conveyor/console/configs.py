"""Editing a task config's limits from the console (admin keys): timeout, retries, priority,
concurrency and rate limit, enabled. The executor and its settings are shown but kept as
stored: the form sends them back masked, as a GET answers them, so secrets stay sealed
(``"***"`` keeps the stored value). The body goes through the API's own ``TaskConfigIn``, so
the bounds and error texts are the API's, and ``TaskService.put_config`` audits it."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

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
        "executor": stored.executor,
        "executor_config": shown_config(stored.executor, stored.executor_config),
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


@router.get("/configs/{task_type}", response_class=HTMLResponse)
async def config_form(task_type: str, who: Viewing) -> Response:
    config = await _stored(who, task_type)
    return who.render("config.html", config=config, priorities=[p.label for p in Priority],
                      shown=shown_config(config.executor, config.executor_config),
                      can_edit=who.principal.scope >= Scope.ADMIN)


@router.post("/configs/{task_type}")
async def config_save(task_type: str, who: Viewing) -> Response:
    fields = await session.checked_form(who.request)
    who.need(who.principal.scope >= Scope.ADMIN, "change task configs")
    config = edited(await _stored(who, task_type), fields, time.time())
    await who.service.put_config(config, actor=acting(who.principal, who.request))
    return RedirectResponse(f"{session.PREFIX}/configs/{config.task_type}", status_code=303)

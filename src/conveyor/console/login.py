"""Logging in and out: the key typed into the form is checked as the API checks a bearer
key, then kept in the HttpOnly cookie (``session``); logging out drops it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from conveyor.apikeys import split_token, verify
from conveyor.console import session
from conveyor.console.routing import ConsoleRoute
from conveyor.console.views import render
from conveyor.errors import Unauthorized
from conveyor.service import TaskService

router = APIRouter(route_class=ConsoleRoute)


def _auth_off(request: Request) -> bool:
    return not request.app.state.console_auth


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    if _auth_off(request):
        return RedirectResponse(session.PREFIX, status_code=303)
    return render(request, "login.html", message=None)


@router.post("/login")
async def login(request: Request) -> Response:
    """No key is needed to reach this form, so its body is capped (``checked_form``) and it
    must still carry the CSRF token the form was served with (no login CSRF)."""
    fields = await session.checked_form(request)
    if _auth_off(request):
        return RedirectResponse(session.PREFIX, status_code=303)
    token = fields.get("key", "").strip()
    svc: TaskService = request.app.state.service
    try:
        key_id, secret = split_token(token)
        verify(await svc.store.keys.get_key(key_id), secret)
    except Unauthorized:
        return render(request, "login.html", 401, message="That key is not valid.")
    response = RedirectResponse(session.PREFIX, status_code=303)
    session.new_csrf(request)
    session.remember(request, response)
    session.keep_key(request, response, token)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await session.checked_form(request)
    response = RedirectResponse(f"{session.PREFIX}/login", status_code=303)
    session.drop_key(response)
    return response


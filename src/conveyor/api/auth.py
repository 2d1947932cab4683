"""Authentication of API calls with ``Authorization: Bearer cvk_...`` keys.

Every call looks its key up in the store (a primary-key read), so a revoked key is refused on
its next call in every API process. When authentication is off (standalone on loopback), every
caller is the anonymous admin.

The key is checked from the headers alone, by ``Authenticate``, before any route reads a body:
a caller without a valid key cannot make the server read and parse megabytes of JSON. Routes
then only ask for the scope they need (``Reader``, ``Submitter``, ``Admin``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as AsgiScope

from conveyor.api.errors import error_response
from conveyor.api.guard import UNSAFE_METHODS, has_body
from conveyor.api.tenancy import check_fleet
from conveyor.apikeys import ANONYMOUS, Principal, Scope, split_token, verify
from conveyor.audit import Actor
from conveyor.errors import BackendUnavailable, ConveyorError, Forbidden, Unauthorized
from conveyor.store.protocol import ApiKeys

bearer = HTTPBearer(auto_error=False, description="An API key: cvk_<id>_<secret>")
# Only for the OpenAPI schema's "Authorize" button: ``Authenticate`` has read the header.
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]

PRINCIPAL = "principal"  # where ``Authenticate`` leaves its finding in the request state


class Authenticate:
    """Pure ASGI middleware resolving the caller from ``Authorization`` before the app runs.

    ``keys`` None means authentication is off: everyone is the anonymous admin. Otherwise a
    request that changes state or carries a body and has no valid key is answered 401 (or 503
    when the key store is down) here, its body unread; for any other request the finding is left
    in the request state for ``authenticate``, so public routes (``/healthz``) stay public.
    """

    def __init__(
        self, app: ASGIApp, keys: ApiKeys | None, console: CookieKey | None = None
    ) -> None:
        self.app = app
        self.keys = keys
        self.console = console

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        if self.console is not None and self.console.covers(scope["path"]):
            # The console's pages: the key comes from its cookie, and its routes answer a
            # missing one themselves (a login form rather than a 401).
            token = self.console.token(headers.get(b"cookie"))
            scope.setdefault("state", {})[PRINCIPAL] = await self._resolve(token)
            await self.app(scope, receive, send)
            return
        found = await self._resolve(headers.get(b"authorization"))
        if isinstance(found, ConveyorError) and (
            scope["method"] in UNSAFE_METHODS or has_body(headers)
        ):
            status, code = (503, "unavailable") if isinstance(found, BackendUnavailable) else (
                401, "unauthorized")
            response = error_response(status, code, str(found))
            response.headers["connection"] = "close"  # the body is never read
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL] = found
        await self.app(scope, receive, send)

    async def _resolve(self, header: bytes | None) -> Principal | ConveyorError:
        if self.keys is None:
            return ANONYMOUS
        scheme, _, token = (header or b"").decode("latin-1").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Unauthorized("missing API key: send Authorization: Bearer cvk_<id>_<secret>")
        try:
            key_id, secret = split_token(token.strip())
            return verify(await self.keys.get_key(key_id), secret)
        except (Unauthorized, BackendUnavailable) as exc:
            return exc


@dataclass(frozen=True, slots=True)
class CookieKey:
    """Where a browser keeps its key: the cookie ``name``, sent (and read) only under the
    path ``prefix``. SameSite=Strict and the console's CSRF token keep other sites from using
    it; the API under ``/api`` never reads it, so its calls still need the header."""

    prefix: str
    name: str

    def covers(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    def token(self, header: bytes | None) -> bytes | None:
        """The cookie's value as an ``Authorization`` header would carry it, or None."""
        jar = SimpleCookie()
        try:
            jar.load((header or b"").decode("latin-1"))
        except CookieError:
            return None
        found = jar.get(self.name)
        return f"Bearer {found.value}".encode("latin-1") if found and found.value else None


async def authenticate(request: Request, credentials: Credentials) -> Principal:
    found: Principal | ConveyorError = getattr(request.state, PRINCIPAL)
    if isinstance(found, ConveyorError):
        raise found
    return found


def acting(principal: Principal, request: Request) -> Actor:
    """Who an audit row names: the caller's key and tenant, and the address it called from
    (the peer as uvicorn reports it: ``X-Forwarded-For`` counts only from its
    ``forwarded_allow_ips``, by default 127.0.0.1)."""
    return Actor.of(principal, request.client.host if request.client is not None else None)


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    async def dependency(
        principal: Annotated[Principal, Depends(authenticate)],
    ) -> Principal:
        if principal.scope < scope:
            raise Forbidden(
                f"this needs an API key of scope {scope.label}; yours is {principal.scope.label}"
            )
        return principal

    return dependency


def scraper_or_reader(
    networks: Iterable[str],
) -> Callable[..., Awaitable[Principal | None]]:
    """``/metrics``: open to the listed scrape addresses, otherwise like any read call."""
    allowed = [ipaddress.ip_network(item, strict=False) for item in networks]
    reader = require(Scope.READ)

    async def dependency(request: Request, credentials: Credentials) -> Principal | None:
        client = request.client.host if request.client is not None else ""
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            address = None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack socket reports IPv4 clients so
        if address is not None and any(address in network for network in allowed):
            return None
        who = await reader(await authenticate(request, credentials))
        check_fleet(who, "the metrics count")
        return who

    return dependency


Reader = Annotated[Principal, Depends(require(Scope.READ))]
Submitter = Annotated[Principal, Depends(require(Scope.SUBMIT))]
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]

"""Refuse what a web page could make a browser send to a Conveyor it can reach.

A standalone Conveyor on loopback needs no key, so two browser tricks would let any page the
user visits drive it: a DNS-rebinding page (its own name resolved to 127.0.0.1, so the browser
thinks the API is same-origin and lets the page read the answers) and a cross-site "simple"
request (a form or ``fetch`` with ``Content-Type: text/plain`` needs no CORS preflight). The
first always carries the attacker's name in ``Host``; the second carries a foreign ``Origin``
or a body that is not JSON. So the guard answers, before any route runs:

- 421 when ``Host`` is not a name this server serves (``served_hosts``), except on the health
  probes, which tell a page nothing and which load balancers call by the instance's address;
- 403 when a state-changing request (POST/PUT/PATCH/DELETE) comes with an ``Origin`` other than
  the server's own or one listed in ``server.allowed_origins``;
- 415 when a request carries a body (or a state-changing one declares a type) that is not
  ``application/json``, the only type browsers cannot send cross-site without a preflight;
  except for HTML forms posted to the console (``/ui``), which checks a CSRF token on every
  state-changing form instead (``conveyor.console.csrf``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.api.errors import error_response
from conveyor.config import ServerSettings

log = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"", "0.0.0.0", "::", "*"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
PROBES = frozenset({"/healthz", "/readyz"})


def served_hosts(server: ServerSettings, bound_host: str) -> frozenset[str] | None:
    """The host names a request may name; None when every name is accepted (``*``)."""
    if "*" in server.allowed_hosts:
        return None
    if server.allowed_hosts:
        return frozenset(_bare(name) for name in server.allowed_hosts)
    bound = _bare(bound_host)
    if bound not in WILDCARDS:
        return LOOPBACK_NAMES | {bound}
    log.warning("listening on %s but serving only the loopback names: list the names clients "
                "use in server.allowed_hosts (CONVEYOR_SERVER__ALLOWED_HOSTS)", bound_host)
    return LOOPBACK_NAMES


def _bare(host: str) -> str:
    """A host name without port or IPv6 brackets, lower-cased: ``[::1]:8080`` → ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:  # name:port (a bare IPv6 address has several colons)
        return host.partition(":")[0]
    return host


def has_body(headers: dict[bytes, bytes]) -> bool:
    """Whether the request announces a body (a length above 0, or a chunked one)."""
    length = headers.get(b"content-length", b"0").strip()
    return b"transfer-encoding" in headers or not (length.isdigit() and int(length) == 0)


class RequestGuard:
    """Pure ASGI middleware: the three checks of the module docstring, before the app runs.

    ``hosts`` None accepts every ``Host``: for in-process transports (tests, embedding) that no
    browser can reach, and for ``server.allowed_hosts: ["*"]``.
    """

    def __init__(
        self, app: ASGIApp, hosts: frozenset[str] | None, origins: Iterable[str] = (),
        forms: str | None = None,
    ) -> None:
        """``forms``: a path prefix whose routes take HTML form bodies (the console, which
        checks its own CSRF token on each); Host and Origin are checked there too."""
        self.app = app
        self.hosts = hosts
        self.origins = frozenset(origins)
        self.forms = forms

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        refusal = self._refusal(scope["method"], scope["path"], headers)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, code, message = refusal
        response = error_response(status, code, message)
        response.headers["connection"] = "close"  # the body, if any, is never read
        await response(scope, receive, send)

    def _refusal(
        self, method: str, path: str, headers: dict[bytes, bytes]
    ) -> tuple[int, str, str] | None:
        host = headers.get(b"host", b"").decode("latin-1")
        probe = path in PROBES and method in ("GET", "HEAD")
        if self.hosts is not None and not probe and _bare(host) not in self.hosts:
            return 421, "misdirected", (
                f"this server does not answer to the host {host!r}; set server.allowed_hosts "
                "(CONVEYOR_SERVER__ALLOWED_HOSTS) to the names clients use"
            )
        origin = headers.get(b"origin")
        if method in UNSAFE_METHODS and origin is not None and not self._same_origin(
            origin.decode("latin-1"), host
        ):
            return 403, "cross_origin", (
                f"cross-origin {method} from {origin.decode('latin-1')!r} refused; list the "
                "origin in server.allowed_origins (CONVEYOR_SERVER__ALLOWED_ORIGINS) to allow it"
            )
        declared = headers.get(b"content-type")
        if has_body(headers) or (declared is not None and method in UNSAFE_METHODS):
            media = (declared or b"").decode("latin-1").partition(";")[0].strip().lower()
            if media == FORM and self._takes_forms(path):
                return None
            if media != JSON:
                return 415, "unsupported_media_type", (
                    f"request bodies must be JSON: send Content-Type: {JSON} "
                    f"(got {media or 'none'!r})"
                )
        return None

    def _takes_forms(self, path: str) -> bool:
        prefix = self.forms
        return prefix is not None and (path == prefix or path.startswith(prefix + "/"))

    def _same_origin(self, origin: str, host: str) -> bool:
        """The page's origin is this server (same ``host[:port]``; the scheme is not compared,
        so TLS ended at a load balancer still matches) or one listed as allowed."""
        origin = origin.strip().lower().rstrip("/")
        if origin in self.origins:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc == host.strip().lower()

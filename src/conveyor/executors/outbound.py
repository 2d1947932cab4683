"""HTTP calls made on behalf of tasks: one checked client for the ``http`` executor and the
webhook listener.

Address safety (docs/design.md §8.10): every hop is checked by ``netguard`` before it is sent.
Redirects are never followed by httpx; up to ``MAX_REDIRECTS`` are followed here, each target
checked again. Plain ``http`` requests are sent to the very IP address that was checked (with
the original ``Host`` header), so DNS rebinding between check and connect cannot redirect
them; ``https`` keeps the name, and certificate verification binds the peer to it. The client
ignores proxy environment variables (a proxy would reach addresses the guard never sees) and
keeps no cookies (one pool serves every task and tenant).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from http.cookiejar import DefaultCookiePolicy

import httpx

from conveyor.errors import PermanentError, RetryableError
from conveyor.executors.netguard import Allowlist, resolve_checked

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CROSS_ORIGIN_DROPPED = ("authorization", "cookie", "proxy-authorization")
_USER_AGENT = "conveyor-http-executor"
_MAX_ADDRESSES = 4


@dataclass(frozen=True, slots=True)
class Outbound:
    """One request as the caller meant it, before address pinning and redirects."""

    method: str
    url: httpx.URL
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class Reply:
    """The final response after redirects: status and the (size-capped) body."""

    status_code: int
    content: bytes


def build_client(
    max_connections: int = 100, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """An ``AsyncClient`` fit for calls made on behalf of tasks (see the module docstring)."""
    client = httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=min(max_connections, 20),
        ),
        headers={"User-Agent": _USER_AGENT},
    )
    client.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return client


async def send_checked(
    client: httpx.AsyncClient,
    request: Outbound,
    allowlist: Allowlist,
    *,
    max_bytes: int,
    max_redirects: int = MAX_REDIRECTS,
) -> Reply:
    """Send ``request``, following up to ``max_redirects`` redirects, checking every hop.

    Transport failures become ``RetryableError``; a refused address or a malformed URL
    ``PermanentError``. HTTP error statuses are returned, not raised: the caller decides.
    """
    for hop in range(max_redirects + 1):
        status, location, content = await _send_once(client, request, allowlist, max_bytes)
        if status not in REDIRECT_STATUSES or location is None:
            return Reply(status, content)
        if hop == max_redirects:
            break
        request = _follow(request, status, location)
    raise PermanentError(f"more than {max_redirects} redirects from {request.url}")


def _follow(request: Outbound, status: int, location: str) -> Outbound:
    """The request a redirect asks for, with the method and header rules browsers apply."""
    try:
        target = request.url.join(location)
    except httpx.InvalidURL as exc:
        raise PermanentError(f"redirect to an invalid URL {location!r}") from exc
    method, content = request.method, request.content
    if status == 303 or (status in (301, 302) and method == "POST"):
        method, content = "GET", None
    headers = dict(request.headers)
    if (target.scheme, target.host, target.port) != (
        request.url.scheme,
        request.url.host,
        request.url.port,
    ):
        headers = {k: v for k, v in headers.items() if k.lower() not in _CROSS_ORIGIN_DROPPED}
    return replace(request, method=method, url=target, headers=headers, content=content)


async def _pin(url: httpx.URL, allowlist: Allowlist) -> list[tuple[httpx.URL, dict[str, str]]]:
    """Check ``url``'s host and say where to connect: for plain http, each checked address
    in resolver order (the next is tried when one refuses the connection); for https, the name.
    """
    if url.scheme not in ("http", "https"):
        raise PermanentError(f"only http and https URLs are allowed, not {url.scheme!r}")
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = await resolve_checked(url.host, port, allowlist)
    if url.scheme == "https":
        return [(url, {})]
    host = {"Host": url.netloc.decode("ascii")}
    return [(url.copy_with(host=str(address)), host) for address in addresses[:_MAX_ADDRESSES]]


async def _send_once(
    client: httpx.AsyncClient, request: Outbound, allowlist: Allowlist, max_bytes: int
) -> tuple[int, str | None, bytes]:
    """One hop: check, send, read; map transport failures onto the retry split."""
    candidates = await _pin(request.url, allowlist)
    try:
        return await _try_each(client, request, candidates, max_bytes)
    except httpx.TimeoutException as exc:
        raise RetryableError(f"{request.method} {request.url} timed out: {exc!r}") from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise PermanentError(f"{request.method} {request.url}: {exc}") from exc
    except httpx.TransportError as exc:
        raise RetryableError(f"{request.method} {request.url} failed: {exc!r}") from exc


async def _try_each(
    client: httpx.AsyncClient,
    request: Outbound,
    candidates: list[tuple[httpx.URL, dict[str, str]]],
    max_bytes: int,
) -> tuple[int, str | None, bytes]:
    for index, (target, extra) in enumerate(candidates):
        try:
            return await _exchange(client, request, target, extra, max_bytes)
        except httpx.ConnectError:
            if index == len(candidates) - 1:
                raise
    raise PermanentError(f"{request.url} has no address to connect to")


async def _exchange(
    client: httpx.AsyncClient,
    request: Outbound,
    target: httpx.URL,
    extra: dict[str, str],
    max_bytes: int,
) -> tuple[int, str | None, bytes]:
    built = client.build_request(
        request.method,
        target,
        headers=merge_headers(request.headers, extra),
        content=request.content,
        timeout=request.timeout,
    )
    response = await client.send(built, stream=True)
    try:
        content = await _read_capped(response, max_bytes)
    finally:
        await response.aclose()
    return response.status_code, response.headers.get("location"), content


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """Read the body, refusing one larger than ``max_bytes`` (a result must fit in the store)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise PermanentError(f"response body larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def merge_headers(base: Mapping[str, str], top: Mapping[str, str]) -> dict[str, str]:
    """``base`` overridden by ``top``, comparing names case-insensitively as HTTP does."""
    replaced = {name.lower() for name in top}
    merged = {k: v for k, v in base.items() if k.lower() not in replaced}
    merged.update(top)
    return merged

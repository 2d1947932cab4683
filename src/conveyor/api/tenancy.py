"""Which tenant a request reads and writes: the one place the API turns a caller into a
tenant filter.

A key below ``superadmin`` is bound to its tenant: every read is filtered by it and every
write goes into it, and naming another tenant with ``?tenant=`` is refused. A caller spanning
tenants (a ``superadmin`` key, or anyone when authentication is off) reads every tenant unless
``?tenant=`` narrows it to one, and writes into the named tenant, else into its own key's
tenant (the default tenant for a key made without ``--tenant``, and when authentication is off).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import Field

from conveyor.apikeys import Principal
from conveyor.errors import Forbidden
from conveyor.tenants import DEFAULT_TENANT, check_tenant

TENANT_NOTE = "superadmin only: the tenant to read or write (default: every tenant for lists)"
TENANT_CHARS = 64
TenantParam = Annotated[str | None, Query(max_length=TENANT_CHARS, description=TENANT_NOTE)]
TENANT_TEXT = Annotated[str, Field(max_length=TENANT_CHARS)]  # the parameter's value, checked


def reach(who: Principal, named: str | None) -> str | None:
    """The tenant filter of a read: None spans every tenant."""
    if named is None:
        return who.sees
    check_tenant(named)
    if not who.spans and named != who.tenant:
        raise Forbidden("only a superadmin key may name a tenant other than its own")
    return named


def home(who: Principal, named: str | None) -> str:
    """The tenant a write goes into."""
    return reach(who, named) or who.tenant


def check_fleet(who: Principal, what: str) -> None:
    """``what`` spans every tenant (pausing a queue, the process metrics): only a caller
    spanning tenants or a key of the default tenant (the install's own operators) may do it;
    the route's own scope check still applies."""
    if not who.spans and who.tenant != DEFAULT_TENANT:
        raise Forbidden(
            f"{what} every tenant's tasks: it needs a superadmin key or a key of the "
            f"{DEFAULT_TENANT!r} tenant"
        )

"""API key routes under ``/api/v1/keys``: an admin manages its own tenant's keys."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from conveyor.api.auth import Admin, acting
from conveyor.api.schemas import iso
from conveyor.api.task_routes import ERRORS
from conveyor.api.tenancy import TenantParam, home, reach
from conveyor.apikeys import ApiKey, Scope
from conveyor.key_admin import KeyAdmin

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["keys"])


class KeyIn(BaseModel):
    scope: str = Field(description="read, submit or admin (superadmin only with the CLI)")
    name: str = Field("", max_length=255)


class KeyOut(BaseModel):
    key_id: str
    scope: str
    name: str
    tenant: str
    created_at: str | None
    revoked_at: str | None = None
    key: str | None = Field(None, description="the whole key, only in the answer that made it")

    @classmethod
    def of(cls, k: ApiKey, token: str | None = None) -> KeyOut:
        return cls(
            key_id=k.key_id, scope=k.scope.label, name=k.name, tenant=k.tenant,
            created_at=iso(k.created_at), revoked_at=iso(k.revoked_at), key=token,
        )


class KeyList(BaseModel):
    keys: list[KeyOut]


def key_admin(request: Request) -> KeyAdmin:
    return KeyAdmin(request.app.state.service.store.keys)


@router.get("/keys", response_model=KeyList)
async def list_keys(request: Request, who: Admin, tenant: TenantParam = None) -> KeyList:
    """The keys of the caller's tenant (never their secrets)."""
    return KeyList(keys=[KeyOut.of(k) for k in await key_admin(request).list_keys(
        reach(who, tenant))])


@router.post("/keys", status_code=201, response_model=KeyOut)
async def create_key(
    body: KeyIn, request: Request, who: Admin, tenant: TenantParam = None
) -> KeyOut:
    """A new key in the caller's tenant; its whole text is in this answer only."""
    key, token = await key_admin(request).create(
        Scope.parse(body.scope), body.name, home(who, tenant), acting(who, request)
    )
    return KeyOut.of(key, token)


@router.delete("/keys/{key_id}", status_code=204)
async def revoke_key(key_id: str, request: Request, who: Admin) -> Response:
    """Revoke a key of the caller's tenant; refused from its next call on."""
    await key_admin(request).revoke(key_id, who.sees, acting(who, request))
    return Response(status_code=204)

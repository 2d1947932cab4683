"""``KeyAdmin``: API keys as an admin manages them over the API, each within its tenant.

The CLI writes keys straight into the store and may make any scope; over the API an admin key
lists, creates and revokes only the keys of the tenant it acts in (``api/tenancy``), and no
one may make a ``superadmin`` key: a key that spans tenants is made only by whoever holds the
database (``conveyor apikey create --scope superadmin``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from conveyor.apikeys import ApiKey, Scope, new_key
from conveyor.audit import Actor, key_created, key_revoked
from conveyor.errors import NotFound, ValidationError
from conveyor.store.protocol import ApiKeys
from conveyor.tenants import check_tenant


class KeyAdmin:
    def __init__(self, keys: ApiKeys, clock: Callable[[], float] = time.time) -> None:
        self._keys = keys
        self._clock = clock

    async def list_keys(self, tenant: str | None) -> list[ApiKey]:
        return await self._keys.list_keys(tenant)

    async def create(
        self, scope: Scope, name: str, tenant: str, actor: Actor
    ) -> tuple[ApiKey, str]:
        """A new key of ``tenant`` and its full text, shown once; audited in ``tenant``."""
        if scope >= Scope.SUPERADMIN:
            raise ValidationError(
                "superadmin keys are made only with the CLI: conveyor apikey create "
                "--scope superadmin"
            )
        key, token = new_key(scope, name, self._clock(), check_tenant(tenant))
        await self._keys.put_key(key, audit=key_created(replace(actor, tenant=key.tenant), key))
        return key, token

    async def revoke(self, key_id: str, tenant: str | None, actor: Actor) -> None:
        """Another tenant's key is not found, like a key that does not exist."""
        audit = key_revoked(actor, key_id)
        if not await self._keys.revoke_key(key_id, self._clock(), tenant, audit=audit):
            raise NotFound(f"no active key with id {key_id!r}")

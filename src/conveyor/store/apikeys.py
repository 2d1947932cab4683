"""API keys (``api_keys``): only hashes are stored; every API call reads one by primary key."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from conveyor.apikeys import ApiKey, Scope
from conveyor.audit import AuditEntry
from conveyor.errors import Conflict
from conveyor.store.audit import record
from conveyor.store.database import Database
from conveyor.store.rows import in_tenant
from conveyor.store.schema import api_keys


class SqlApiKeys:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put_key(self, key: ApiKey, *, audit: AuditEntry | None = None) -> None:
        async with self._db.begin() as conn:
            try:
                await conn.execute(api_keys.insert().values(
                    key_id=key.key_id, secret_hash=key.secret_hash, scope=key.scope.label,
                    name=key.name, created_at=key.created_at, revoked_at=key.revoked_at,
                    tenant=key.tenant,
                ))
            except IntegrityError as exc:
                raise Conflict(f"API key {key.key_id} exists") from exc
            await record(conn, audit, key.created_at)

    async def get_key(self, key_id: str) -> ApiKey | None:
        row = await self._db.first(sa.select(api_keys).where(api_keys.c.key_id == key_id))
        return None if row is None else _key_from_row(row)

    async def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        query = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)
        return [_key_from_row(r) for r in await self._db.rows(in_tenant(query, tenant, api_keys))]

    async def revoke_key(
        self, key_id: str, now: float, tenant: str | None = None, *,
        audit: AuditEntry | None = None,
    ) -> bool:
        """The audit row is filed under the key's own tenant, so a superadmin revoking a
        tenant's key shows in that tenant's audit."""
        async with self._db.begin() as conn:
            result = await conn.execute(in_tenant(
                api_keys.update()
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now), tenant, api_keys
            ))
            if result.rowcount:
                owner = (await conn.execute(
                    sa.select(api_keys.c.tenant).where(api_keys.c.key_id == key_id)
                )).scalar_one()
                await record(conn, audit, now, before={"revoked_at": None},
                             after={"revoked_at": now}, tenant=owner)
        return bool(result.rowcount)


def _key_from_row(row: sa.RowMapping) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"], scope=Scope.parse(row["scope"]), name=row["name"],
        created_at=row["created_at"], secret_hash=row["secret_hash"],
        revoked_at=row["revoked_at"], tenant=row["tenant"],
    )

"""The store contract for API keys, on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import pytest

from conveyor.apikeys import ApiKey, Scope
from conveyor.errors import Conflict
from conveyor.store.sql import SqlStore


async def test_keys_put_get_list_and_revoke(store: SqlStore) -> None:
    older = ApiKey("k1", Scope.ADMIN, "ops", created_at=1.0, secret_hash="a" * 64)
    newer = ApiKey("k2", Scope.READ, "dashboard", created_at=2.0, secret_hash="b" * 64)
    await store.keys.put_key(newer)
    await store.keys.put_key(older)
    assert await store.keys.get_key("k1") == older
    assert await store.keys.get_key("nope") is None
    assert await store.keys.list_keys() == [older, newer]
    assert await store.keys.revoke_key("k2", 5.0)
    assert not await store.keys.revoke_key("k2", 6.0)  # already revoked: the first time stays
    assert not await store.keys.revoke_key("nope", 6.0)
    revoked = await store.keys.get_key("k2")
    assert revoked is not None and revoked.revoked_at == 5.0


async def test_a_taken_key_id_is_a_conflict(store: SqlStore) -> None:
    key = ApiKey("k1", Scope.READ, "first", created_at=1.0, secret_hash="a" * 64)
    await store.keys.put_key(key)
    with pytest.raises(Conflict):
        await store.keys.put_key(ApiKey("k1", Scope.ADMIN, "second", created_at=2.0))
    assert await store.keys.get_key("k1") == key

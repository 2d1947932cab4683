"""API keys: format, hashing and scopes. Pure except for the clock and the random source.

A key reads ``cvk_<key_id>_<secret>``. Only SHA-256 of the secret is stored: keys are long
random strings, so a fast hash is enough (no password stretching needed) and a database leak
does not leak usable keys. The key id is public (it is shown in listings and recorded as the
owner of the tasks a key creates); the secret never leaves the response that created it.

Scopes are ordered: ``read`` (query) < ``submit`` (also create, and cancel / retry its own
tasks) < ``admin`` (everything, including task configs, pause / resume and other keys' tasks)
< ``superadmin`` (all of that across tenants; made only by the CLI, never through the API).
Every key belongs to one tenant, and every key below ``superadmin`` sees that tenant only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import IntEnum

from conveyor.errors import Unauthorized, ValidationError
from conveyor.tenants import DEFAULT_TENANT

PREFIX = "cvk"


class Scope(IntEnum):
    READ = 1
    SUBMIT = 2
    ADMIN = 3
    SUPERADMIN = 4

    @classmethod
    def parse(cls, text: str) -> Scope:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValidationError(
                f"scope must be read, submit, admin or superadmin; got {text!r}"
            ) from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    scope: Scope
    name: str
    created_at: float
    secret_hash: str = ""
    revoked_at: float | None = None
    tenant: str = DEFAULT_TENANT


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key, or nobody when authentication is off (then ``key_id`` is None
    and everything is allowed)."""

    key_id: str | None
    scope: Scope
    tenant: str = DEFAULT_TENANT

    def owns(self, owner: str | None) -> bool:
        return self.scope >= Scope.ADMIN or self.key_id is None or owner == self.key_id

    @property
    def spans(self) -> bool:
        """Whether the caller sees every tenant: a superadmin key, or nobody when
        authentication is off."""
        return self.key_id is None or self.scope >= Scope.SUPERADMIN

    @property
    def sees(self) -> str | None:
        """The tenant the store filters this caller's reads and writes by; None: all."""
        return None if self.spans else self.tenant


ANONYMOUS = Principal(None, Scope.ADMIN)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(
    scope: Scope, name: str, now: float, tenant: str = DEFAULT_TENANT
) -> tuple[ApiKey, str]:
    """A fresh key and its full text (shown once)."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(key_id, scope, name, now, hash_secret(secret), tenant=tenant)
    return key, f"{PREFIX}_{key_id}_{secret}"


def split_token(token: str) -> tuple[str, str]:
    """``cvk_<id>_<secret>`` → (id, secret); anything else is refused without a lookup."""
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not key_id or not secret:
        raise Unauthorized("malformed API key: expected cvk_<id>_<secret>")
    return key_id, secret


def verify(key: ApiKey | None, secret: str) -> Principal:
    if key is None or not hmac.compare_digest(key.secret_hash, hash_secret(secret)):
        raise Unauthorized("unknown API key")
    if key.revoked_at is not None:
        raise Unauthorized("this API key has been revoked")
    return Principal(key.key_id, key.scope, key.tenant)

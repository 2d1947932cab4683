"""Authentication of API calls with ``Authorization: Bearer cvk_...`` keys.

Every call looks its key up in the store (a primary-key read), so a revoked key is refused on
its next call in every API process. When authentication is off (standalone on loopback), every
caller is the anonymous admin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from conveyor.apikeys import ANONYMOUS, Principal, Scope, split_token, verify
from conveyor.errors import Forbidden, Unauthorized
from conveyor.service import TaskService

bearer = HTTPBearer(auto_error=False, description="An API key: cvk_<id>_<secret>")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def authenticate(request: Request, credentials: Credentials) -> Principal:
    if not request.app.state.auth_required:
        return ANONYMOUS
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing API key: send Authorization: Bearer cvk_<id>_<secret>")
    key_id, secret = split_token(credentials.credentials.strip())
    service: TaskService = request.app.state.service
    return verify(await service.store.keys.get_key(key_id), secret)


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


Reader = Annotated[Principal, Depends(require(Scope.READ))]
Submitter = Annotated[Principal, Depends(require(Scope.SUBMIT))]
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]

"""An executor that receives its config with the sealed secrets opened, and whose errors
never carry them.

``bootstrap`` wraps every executor of a worker in ``Unsealing``: the plaintext of a secret
exists only for the call, in this process, and never in the catalog's cache or anything the
API returns. A service that echoes a credential in its error (``401: bad token s3cr3t``) would
otherwise put it in the task's ``error``, its logs, its events and its webhook; the error text
is scrubbed of every secret value (and of the longer words of each, the token after
``Bearer``) before it leaves, with the failure's retry class kept. Results are the service's
data and are left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor.errors import PermanentError, RetryableError
from conveyor.executors.protocol import Executor
from conveyor.executors.secret_fields import secret_fields
from conveyor.keyring import Keyring, NoSecretKeys
from conveyor.models import Task
from conveyor.sealing import scrub, secret_texts, unseal


class Unsealing:
    def __init__(self, name: str, inner: Executor, keyring: Keyring) -> None:
        self.name = name
        self.inner = inner
        self._keyring = keyring

    async def start(self) -> None:
        start = getattr(self.inner, "start", None)
        if start is not None:
            await start()

    async def execute(self, task: Task, config: Mapping[str, Any]) -> Any:
        try:
            opened = unseal(config, self._keyring.opening)
        except NoSecretKeys as exc:  # a worker started without the keys: fixable, so retried
            raise RetryableError(str(exc)) from None
        secrets = secret_texts(opened, secret_fields(self.name))
        try:
            return await self.inner.execute(task, opened)
        except Exception as exc:
            text = str(exc)
            if not any(secret in text for secret in secrets):
                raise
            kind = PermanentError if isinstance(exc, PermanentError) else RetryableError
            raise kind(scrub(text, secrets)) from None

    async def close(self) -> None:
        await self.inner.close()

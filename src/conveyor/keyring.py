"""Where the Fernet keys that seal task-config secrets come from (``sealing``).

``secrets.keys`` when set: the first seals, all open, in every process (the API seals, workers
open, ``conveyor secrets rotate`` re-seals). Without it:

* on a SQLite file, a key file beside the database (``conveyor.db.key``, mode 0600) made on
  first need and reused after, so ``conveyor standalone`` keeps its secrets across restarts
  without any setting. Whoever can read the database can usually read the key file too, so
  it keeps secrets out of backups and copies of the database file, not away from the machine's
  users: give ``secrets.keys`` to protect more;
* on an in-memory SQLite database, a key of the process, which dies with the data;
* on MariaDB or PostgreSQL (the processes of a distributed deployment are on several
  machines and share no file), none: storing a secret is refused with how to set one.

Nothing is read or written before a secret is sealed or opened, so a process that never sees
one never touches the key file; ``check`` lets a starting process fail early on a key file it
could not use.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.config import Settings
from conveyor.errors import ConfigError, ValidationError
from conveyor.store.urls import database_url

if TYPE_CHECKING:  # imported where a key is used: a process that seals nothing never loads it
    from cryptography.fernet import Fernet, MultiFernet

HOW_TO_SET = (
    "set secrets.keys (CONVEYOR_SECRETS__KEYS) to a key made by `conveyor secrets generate-key`, "
    "the same on every api and worker process"
)


class NoSecretKeys(ValidationError):
    """No key is configured where one is needed (a 422 when the API is asked to seal)."""


def generate_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


class Keyring:
    def __init__(
        self, keys: Sequence[str] = (), key_file: Path | None = None, *, ephemeral: bool = False
    ) -> None:
        self._configured = [_fernet(k) for k in keys]
        self.key_file = key_file
        self._ephemeral = ephemeral
        self._loaded: list[Fernet] | None = self._configured or None

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        keys = settings.secrets.keys
        url = database_url(settings.database_url)
        if keys or url.get_backend_name() != "sqlite":
            return cls(keys)
        name = url.database
        if not name or name == ":memory:":
            return cls(ephemeral=True)
        path = Path(name)
        return cls(key_file=path.with_name(path.name + ".key"))

    def fernets(self, *, create: bool) -> list[Fernet]:
        """The keys, first one sealing; ``create`` makes a key file or process key if none."""
        if self._loaded is None:
            if self.key_file is not None and (create or self.key_file.exists()):
                self._loaded = [_fernet(_read_or_create(self.key_file))]
            elif self._ephemeral and create:
                self._loaded = [_fernet(generate_key())]
        if self._loaded is None:
            raise NoSecretKeys(f"no key to seal or open task-config secrets with: {HOW_TO_SET}")
        return self._loaded

    def sealing(self) -> MultiFernet:
        from cryptography.fernet import MultiFernet

        return MultiFernet(self.fernets(create=True))

    def opening(self) -> MultiFernet:
        from cryptography.fernet import MultiFernet

        return MultiFernet(self.fernets(create=False))

    def check(self) -> None:
        """At start: a key file that exists must be private and hold a key."""
        if not self._configured and self.key_file is not None and self.key_file.exists():
            self.fernets(create=False)


def _fernet(key: str | bytes) -> Fernet:
    from cryptography.fernet import Fernet

    return Fernet(key)


def _read_or_create(path: Path) -> str:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    except OSError as exc:
        raise ConfigError(f"cannot create the secrets key file {path}: {exc}") from exc
    key = generate_key()
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def _read(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the secrets key file {path}: {exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"the secrets key file {path} is open to other users; chmod 600 {path}")
    try:
        _fernet(text)
    except ValueError:
        raise ConfigError(
            f"the secrets key file {path} does not hold a Fernet key; restore it from a backup "
            "(the sealed secrets cannot be opened without it)"
        ) from None
    return text

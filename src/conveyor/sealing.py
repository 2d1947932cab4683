"""Secret fields of executor configs: sealed with Fernet when stored, masked when shown.

Each executor names the fields of its ``executor_config`` that hold credentials
(``executors/secret_fields.py``): a path of keys, ``*`` standing for every key of a map, so
``headers.*`` is every value of the HTTP executor's ``headers``. Every value, not just the
ones that look like credentials (``Authorization``): a guess by name would miss
``X-Api-Key`` or a vendor's own header, and an encrypted ``Accept`` costs nothing.

Stored form: each secret value is replaced by ``{"$sealed": "<Fernet token of its JSON>"}``
inside the same ``task_config.executor_config`` JSON, so no column or migration is needed and
a plain secret is never written. ``MultiFernet``: the first key seals, every key opens, so a
new key goes first, ``conveyor secrets rotate`` re-seals the stored values, and only then is
the old key removed.

Only the worker opens sealed values, just before its executor runs (``executors/unsealing``);
the API seals what it is given and shows every secret as ``"***"``. A PUT that sends ``"***"``
back keeps the value stored at that place, so GET, edit one field, PUT does not wipe a
credential. The API therefore never needs the plaintext of what it stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from conveyor.errors import PermanentError, ValidationError

if TYPE_CHECKING:  # imported where a token is opened: most processes never open one
    from cryptography.fernet import Fernet, MultiFernet

SEALED = "$sealed"
MASK = "***"
# Words of a secret value that say how, not what (``Bearer s3cr3t``): never scrubbed alone.
_SCHEMES = frozenset({"bearer", "basic", "token", "digest", "apikey"})
# Shorter values (``1``, ``yes``), and shorter words of a value, would mangle error texts for
# little protection: no credential is that short.
_MIN_VALUE, _MIN_WORD = 4, 6

Keys = Callable[[], "MultiFernet"]
"""Where the keys come from, asked only when a value must be sealed or opened (``keyring``)."""


class Unopenable(PermanentError):
    """A sealed value that none of the configured keys opens: the task cannot run."""


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(SEALED), str)


def _apply(
    node: Any, segments: Sequence[str], at: tuple[str, ...],
    change: Callable[[Any, tuple[str, ...]], Any],
) -> Any:
    if not segments:
        return change(node, at)
    if not isinstance(node, Mapping):
        return node
    head, rest = segments[0], segments[1:]
    keys = [k for k in node if isinstance(k, str)] if head == "*" else [head]
    updated = dict(node)
    for key in keys:
        if key in node:
            updated[key] = _apply(node[key], rest, (*at, key), change)
    return updated


def transform(
    config: Mapping[str, Any], fields: Iterable[str],
    change: Callable[[Any, tuple[str, ...]], Any],
) -> dict[str, Any]:
    """A copy of ``config`` with ``change(value, path)`` applied at every secret place."""
    result = dict(config)
    for field in fields:
        result = _apply(result, field.split("."), (), change)
    return result


def where(path: tuple[str, ...]) -> str:
    return ".".join(("executor_config", *path))


def _stored_at(config: Mapping[str, Any] | None, path: tuple[str, ...]) -> Any:
    node: Any = config
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def seal_token(keys: Keys, value: Any) -> dict[str, str]:
    return {SEALED: keys().encrypt(orjson.dumps(value)).decode("ascii")}


def seal(
    config: Mapping[str, Any], fields: Sequence[str], keys: Keys,
    stored: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``config`` as it may be stored: every secret value sealed; ``"***"`` takes the value
    ``stored`` holds at the same place (sealed first if it was stored before sealing existed)."""

    def change(value: Any, path: tuple[str, ...]) -> Any:
        if value == MASK:
            kept = _stored_at(stored, path)
            if kept is None:
                raise ValidationError(
                    f"{where(path)} is '***', which keeps the stored value, but none is stored "
                    "there; send the value itself"
                )
            return kept if is_sealed(kept) else seal_token(keys, kept)
        return seal_token(keys, value)

    _refuse_sealed(config, ())
    return transform(config, fields, change)


def _refuse_sealed(node: Any, at: tuple[str, ...]) -> None:
    """A client never sees a token, so one in a PUT is a mistake (or a probe): refused."""
    if isinstance(node, Mapping):
        if SEALED in node:
            raise ValidationError(f"{where(at)}: send the plain value, not a sealed object")
        for key, value in node.items():
            _refuse_sealed(value, (*at, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _refuse_sealed(value, (*at, str(index)))


def _open(keys: Keys, token: str, path: tuple[str, ...]) -> Any:
    from cryptography.fernet import InvalidToken

    try:
        return orjson.loads(keys().decrypt(token.encode("ascii")))
    except InvalidToken:
        raise Unopenable(
            f"{where(path)}: none of the keys in secrets.keys opens its sealed value (was the "
            "key that sealed it removed before `conveyor secrets rotate` re-sealed it?)"
        ) from None


def unseal(config: Any, keys: Keys) -> Any:
    """``config`` with every sealed value opened, wherever it is (the worker's side)."""
    return _map_sealed(config, lambda value, path: _open(keys, value[SEALED], path), ())


def redact(config: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """``config`` as the API shows it: every secret value, sealed or not, is ``"***"``."""
    masked: dict[str, Any] = _map_sealed(config, lambda value, path: MASK, ())
    return transform(masked, fields, lambda value, path: MASK)


@dataclass
class Resealed:
    """What re-sealing one config did: values re-encrypted with the first key, plain values
    (stored before sealing existed) sealed, values already sealed with the first key."""

    rotated: int = 0
    sealed: int = 0
    current: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.rotated or self.sealed)


def reseal(
    config: Mapping[str, Any], fields: Sequence[str], keys: Callable[[], Sequence[Fernet]]
) -> tuple[dict[str, Any], Resealed]:
    """``config`` with every plain secret sealed and every sealed value under the first of
    ``keys()``, wherever it is (a plug-in may since have declared fewer fields). A value the
    first key already opens is left as it is, so running this twice changes nothing the second
    time; ``keys`` is asked only if there is a value. Raises ``Unopenable`` for a value no key
    opens."""
    from cryptography.fernet import InvalidToken, MultiFernet

    counts = Resealed()

    def every() -> MultiFernet:
        return MultiFernet(list(keys()))

    def plain(value: Any, path: tuple[str, ...]) -> Any:
        if is_sealed(value):
            return value
        counts.sealed += 1
        return seal_token(every, value)

    def rotate(value: dict[str, str], path: tuple[str, ...]) -> dict[str, str]:
        token = value[SEALED].encode("ascii")
        try:
            keys()[0].decrypt(token)
        except InvalidToken:
            pass
        else:
            counts.current += 1
            return value
        try:
            rotated = every().rotate(token)
        except InvalidToken:
            _open(every, value[SEALED], path)  # raises, naming the place
        counts.rotated += 1
        return {SEALED: rotated.decode("ascii")}

    return transform(_map_sealed(config, rotate, ()), fields, plain), counts


def _map_sealed(
    node: Any, change: Callable[[dict[str, str], tuple[str, ...]], Any], at: tuple[str, ...]
) -> Any:
    """``node`` with ``change(value, path)`` applied to every sealed value in it."""
    if is_sealed(node):
        return change(node, at)
    if isinstance(node, Mapping):
        return {k: _map_sealed(v, change, (*at, str(k))) for k, v in node.items()}
    if isinstance(node, list):
        return [_map_sealed(v, change, (*at, str(i))) for i, v in enumerate(node)]
    return node


def secret_texts(config: Mapping[str, Any], fields: Sequence[str]) -> set[str]:
    """The plain secret strings of an opened ``config``, and their longer words (the token of
    ``Bearer s3cr3t``), for ``scrub``."""
    found: set[str] = set()

    def collect(value: Any, path: tuple[str, ...]) -> Any:
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        if len(text) >= _MIN_VALUE:
            found.add(text)
        found.update(
            word for word in text.split()
            if len(word) >= _MIN_WORD and word.lower() not in _SCHEMES
        )
        return value

    transform(config, fields, collect)
    return found


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret in it replaced by ``***``, longest first."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text

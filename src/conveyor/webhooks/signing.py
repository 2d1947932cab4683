"""Standard Webhooks signatures (https://www.standardwebhooks.com): sign on the way out,
``verify`` on the receiving side.

Every delivery carries three headers:

* ``webhook-id``: the message id, the same on every retry of one delivery, so a receiver can
  drop duplicates (Conveyor uses ``task_id:attempt:status``);
* ``webhook-timestamp``: integer Unix seconds at which this try was signed; each retry is signed
  anew, so a receiver can refuse anything outside a short replay window;
* ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``. Several signatures
  may be given, separated by spaces (a receiver accepts any of them: secret rotation).

The secret (setting ``webhook_secret``) is written as the Standard Webhooks libraries expect it:
``whsec_`` followed by the base64 (padded or not) of 24 to 64 random bytes; the decoded bytes
are the HMAC key.
``new_secret()`` makes one. Receivers can check deliveries with ``verify`` here or with any
Standard Webhooks library in their own language.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

from conveyor.errors import ConfigError, ConveyorError

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64
DEFAULT_TOLERANCE = 300.0


class WebhookVerificationError(ConveyorError):
    """A delivery failed verification: missing headers, a bad signature, or a timestamp outside
    the replay window. The message says which."""


def new_secret() -> str:
    """A fresh secret in the ``whsec_<base64>`` form (32 random bytes)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signing_key(secret: str) -> bytes:
    """The HMAC key a ``whsec_`` secret stands for; ``ConfigError`` saying the format if not."""
    if not secret.startswith(SECRET_PREFIX):
        raise ConfigError(
            f"setting 'webhook_secret' must start with {SECRET_PREFIX!r} followed by the base64 "
            f"of {MIN_KEY_BYTES} to {MAX_KEY_BYTES} random bytes (Standard Webhooks); make one "
            "with: python -c 'import conveyor.webhooks as w; print(w.new_secret())'"
        )
    try:
        encoded = secret[len(SECRET_PREFIX):]
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(
            f"setting 'webhook_secret': not valid base64 after {SECRET_PREFIX}: {exc}"
        ) from exc
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ConfigError(
            f"setting 'webhook_secret': the key is {len(key)} bytes, it must be "
            f"{MIN_KEY_BYTES} to {MAX_KEY_BYTES}"
        )
    return key


def signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (one ``v1`` signature) for one try of a delivery."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(key: bytes, message_id: str, body: bytes, now: float) -> dict[str, str]:
    """The three Standard Webhooks headers for sending ``body`` at ``now``."""
    timestamp = int(now)
    return {
        ID_HEADER: message_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(key, message_id, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> Any:
    """For receivers: check a delivery and return its decoded JSON body.

    ``headers`` as received (names in any case); ``body`` the exact bytes. Raises
    ``WebhookVerificationError`` when a header is missing, the timestamp is more than
    ``tolerance`` seconds from ``now`` (either way: a replay, or a skewed clock), or no
    signature matches (compared in constant time).
    """
    found = {name.lower(): value for name, value in headers.items()}
    missing = [h for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER) if h not in found]
    if missing:
        raise WebhookVerificationError(f"missing header(s): {', '.join(missing)}")
    timestamp = _timestamp(found[TIMESTAMP_HEADER])
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError(
            f"{TIMESTAMP_HEADER} {timestamp} is {current - timestamp:+.0f} s from now, outside "
            f"the {tolerance:g} s replay window"
        )
    expected = signature(signing_key(secret), found[ID_HEADER], timestamp, body)
    offered = found[SIGNATURE_HEADER].split()
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise WebhookVerificationError("no v1 signature in webhook-signature matches the body")
    return json.loads(body)


def _timestamp(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise WebhookVerificationError(
            f"{TIMESTAMP_HEADER} must be integer Unix seconds, got {raw!r}"
        ) from None

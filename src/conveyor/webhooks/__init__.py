"""Webhooks: final task states POSTed to each task's ``callback_url``, signed per Standard
Webhooks; ``verify`` is the receiving side's check.

    from conveyor.webhooks import verify, WebhookVerificationError

    document = verify(secret, request.headers, body)   # raises WebhookVerificationError

``listener`` sends them (fairly across destinations, each try under a total deadline),
``signing`` says the header and secret formats, ``fair`` is the per-destination scheduling.
"""

from __future__ import annotations

from conveyor.webhooks.listener import EVENT_HEADER, WebhookListener
from conveyor.webhooks.signing import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookVerificationError,
    new_secret,
    verify,
)

__all__ = [
    "EVENT_HEADER",
    "ID_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookListener",
    "WebhookVerificationError",
    "new_secret",
    "verify",
]

"""Standard Webhooks signing and the receivers' ``verify``: what passes and what is refused."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
import standardwebhooks

from conveyor.errors import ConfigError
from conveyor.webhooks import WebhookVerificationError, new_secret, verify
from conveyor.webhooks.signing import signed_headers, signing_key

SECRET = new_secret()
BODY = json.dumps({"task_id": "01A", "status": "SUCCESS"}).encode()
NOW = 1_800_000_000.0


def headers(at: float = NOW, secret: str = SECRET, body: bytes = BODY) -> dict[str, str]:
    return signed_headers(signing_key(secret), "01A:1:SUCCESS", body, at)


def test_a_signed_delivery_verifies_and_returns_its_document() -> None:
    assert verify(SECRET, headers(), BODY, now=NOW + 10) == {"task_id": "01A", "status": "SUCCESS"}


def test_header_names_are_matched_in_any_case() -> None:
    upper = {name.upper(): value for name, value in headers().items()}
    verify(SECRET, upper, BODY, now=NOW)


@pytest.mark.parametrize(
    "body",
    [BODY.replace(b"SUCCESS", b"FAILED"), BODY + b" ", b""],
    ids=["edited", "appended", "empty"],
)
def test_a_tampered_body_is_refused(body: bytes) -> None:
    with pytest.raises(WebhookVerificationError, match="no v1 signature"):
        verify(SECRET, headers(), body, now=NOW)


def test_a_changed_id_or_timestamp_breaks_the_signature() -> None:
    for name, value in (("webhook-id", "01B:1:SUCCESS"), ("webhook-timestamp", str(int(NOW) + 1))):
        with pytest.raises(WebhookVerificationError, match="no v1 signature"):
            verify(SECRET, {**headers(), name: value}, BODY, now=NOW)


def test_another_secret_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="no v1 signature"):
        verify(new_secret(), headers(), BODY, now=NOW)


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_timestamp_outside_the_window_is_refused(offset: float) -> None:
    """A replay of a captured delivery (or a far-off clock) fails even with a valid signature."""
    with pytest.raises(WebhookVerificationError, match="outside the 300 s replay window"):
        verify(SECRET, headers(), BODY, now=NOW - offset)


def test_the_window_is_the_callers_choice() -> None:
    verify(SECRET, headers(), BODY, tolerance=3600, now=NOW + 3000)
    with pytest.raises(WebhookVerificationError, match="30 s replay window"):
        verify(SECRET, headers(), BODY, tolerance=30, now=NOW + 31)


def test_a_missing_or_malformed_header_is_named() -> None:
    partial = {k: v for k, v in headers().items() if k != "webhook-signature"}
    with pytest.raises(WebhookVerificationError, match=r"missing header.*webhook-signature"):
        verify(SECRET, partial, BODY, now=NOW)
    with pytest.raises(WebhookVerificationError, match="integer Unix seconds"):
        verify(SECRET, {**headers(), "webhook-timestamp": "yesterday"}, BODY, now=NOW)


def test_any_of_several_signatures_may_match_for_secret_rotation() -> None:
    old, new = new_secret(), SECRET
    rotated = headers(secret=new)
    rotated["webhook-signature"] = f"{headers(secret=old)['webhook-signature']} " + rotated[
        "webhook-signature"
    ]
    verify(new, rotated, BODY, now=NOW)
    verify(old, rotated, BODY, now=NOW)


def test_the_standard_webhooks_library_agrees_both_ways() -> None:
    """Receivers in any language use a Standard Webhooks library: ours must interoperate."""
    now = time.time()
    theirs = standardwebhooks.Webhook(SECRET)
    assert theirs.verify(BODY, headers(at=now)) == json.loads(BODY)
    signed = theirs.sign("msg_1", datetime.fromtimestamp(now, UTC), BODY.decode())
    their_headers = {
        "webhook-id": "msg_1", "webhook-timestamp": str(int(now)), "webhook-signature": signed
    }
    verify(SECRET, their_headers, BODY)


def test_the_secret_format_is_enforced_with_a_clear_message() -> None:
    assert len(signing_key(new_secret())) == 32
    unpadded = "whsec_" + base64.b64encode(b"k" * 32).decode().rstrip("=")
    assert signing_key(unpadded) == b"k" * 32
    for bad, message in (
        ("s3cret", "must start with 'whsec_'"),
        ("whsec_not base64!", "not valid base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "the key is 5 bytes"),
    ):
        with pytest.raises(ConfigError, match=message):
            signing_key(bad)

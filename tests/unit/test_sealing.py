"""Sealing, masking, re-sealing and scrubbing of executor-config secrets (pure)."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet, MultiFernet

from conveyor.errors import ValidationError
from conveyor.sealing import (
    MASK,
    SEALED,
    Unopenable,
    is_sealed,
    redact,
    reseal,
    scrub,
    seal,
    secret_texts,
    unseal,
)

HEADERS = ("headers.*",)
OLD, NEW = Fernet.generate_key(), Fernet.generate_key()


def keys(*raw: bytes) -> MultiFernet:
    return MultiFernet([Fernet(k) for k in raw])


CONFIG = {"url": "http://svc/x", "headers": {"Authorization": "Bearer s3cr3t", "Accept": "a/b"}}


def test_every_value_of_a_secret_map_is_sealed_and_nothing_else() -> None:
    sealed = seal(CONFIG, HEADERS, lambda: keys(OLD))
    assert sealed["url"] == "http://svc/x"
    assert all(is_sealed(v) for v in sealed["headers"].values())
    assert "s3cr3t" not in json.dumps(sealed)
    assert unseal(sealed, lambda: keys(OLD)) == CONFIG


def test_the_mask_keeps_the_stored_value_and_needs_no_key() -> None:
    stored = seal(CONFIG, HEADERS, lambda: keys(OLD))
    edited = {"url": "http://svc/y", "headers": {"Authorization": MASK, "Accept": "c/d"}}

    def no_keys() -> MultiFernet:
        raise AssertionError("the mask must not need a key")

    again = seal({**edited, "headers": {"Authorization": MASK}}, HEADERS, no_keys, stored)
    assert again["headers"]["Authorization"] == stored["headers"]["Authorization"]
    both = unseal(seal(edited, HEADERS, lambda: keys(OLD), stored), lambda: keys(OLD))
    assert both["headers"] == {"Authorization": "Bearer s3cr3t", "Accept": "c/d"}


def test_a_mask_with_nothing_stored_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match=r"executor_config\.headers\.X-Key"):
        seal({"headers": {"X-Key": MASK}}, HEADERS, lambda: keys(OLD), {"headers": {}})


def test_a_sealed_object_sent_by_a_client_is_refused_anywhere() -> None:
    with pytest.raises(ValidationError, match=r"executor_config\.headers\.A: send the plain"):
        seal({"headers": {"A": {SEALED: "x"}}}, HEADERS, lambda: keys(OLD))
    with pytest.raises(ValidationError, match=r"executor_config\.x\.0"):
        seal({"x": [{SEALED: "x"}]}, (), lambda: keys(OLD))


def test_redact_masks_secrets_sealed_or_plain_and_sealed_values_anywhere() -> None:
    sealed = seal(CONFIG, HEADERS, lambda: keys(OLD))
    assert redact(sealed, HEADERS)["headers"] == {"Authorization": MASK, "Accept": MASK}
    assert redact(CONFIG, HEADERS)["headers"]["Authorization"] == MASK  # stored before sealing
    assert redact({"x": {"y": sealed["headers"]["Accept"]}}, ())["x"]["y"] == MASK
    assert redact(CONFIG, HEADERS)["url"] == "http://svc/x"


def test_reseal_moves_to_the_first_key_seals_plain_values_and_is_idempotent() -> None:
    sealed = seal(CONFIG, HEADERS, lambda: keys(OLD))
    legacy = {**sealed, "headers": {**sealed["headers"], "X-Old": "plain-token"}}
    moved, counts = reseal(legacy, HEADERS, lambda: [Fernet(NEW), Fernet(OLD)])
    assert (counts.rotated, counts.sealed, counts.current) == (2, 1, 0)
    opened = unseal(moved, lambda: keys(NEW))
    assert opened["headers"]["Authorization"] == "Bearer s3cr3t"
    assert opened["headers"]["X-Old"] == "plain-token"
    again, counts = reseal(moved, HEADERS, lambda: [Fernet(NEW), Fernet(OLD)])
    assert again == moved
    assert (counts.rotated, counts.sealed, counts.current, counts.changed) == (0, 0, 3, False)


def test_reseal_asks_for_keys_only_when_there_is_a_value() -> None:
    def no_keys() -> list[Fernet]:
        raise AssertionError("no value, no key needed")

    assert reseal({"url": "u", "headers": {}}, HEADERS, no_keys)[1].changed is False


def test_a_value_no_key_opens_names_its_place() -> None:
    sealed = seal(CONFIG, HEADERS, lambda: keys(OLD))
    with pytest.raises(Unopenable, match=r"executor_config\.headers\.Authorization"):
        unseal(sealed, lambda: keys(NEW))
    with pytest.raises(Unopenable):
        reseal(sealed, HEADERS, lambda: [Fernet(NEW)])


def test_scrub_removes_the_value_and_its_token_but_not_the_scheme() -> None:
    secrets = secret_texts(CONFIG, HEADERS)
    assert scrub("401: got 'Bearer s3cr3t'", secrets) == "401: got '***'"
    assert scrub("bad token s3cr3t", secrets) == "bad token ***"
    assert scrub("Bearer tokens only", secrets) == "Bearer tokens only"

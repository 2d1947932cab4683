"""A Python call turned into a task payload and options (``conveyor.client.calls``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from conveyor.client.calls import api_fields, checked_options, payload_of


def resize(path: str, width: int = 100, *, keep: bool = False) -> None: ...


def flexible(name: str, **extra: Any) -> None: ...


def starred(*paths: str) -> None: ...


def positional_only(path: str, /) -> None: ...


def test_positional_and_keyword_arguments_become_named_fields() -> None:
    assert payload_of(resize, ("a.png",), {}) == {"path": "a.png"}  # defaults stay the worker's
    assert payload_of(resize, ("a.png", 50), {"keep": True}) == {
        "path": "a.png", "width": 50, "keep": True
    }
    assert payload_of(flexible, ("n",), {"x": 1, "y": 2}) == {"name": "n", "x": 1, "y": 2}


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "missing a required argument: 'path'"),
        (("a", 1, 2), {}, "too many positional arguments"),
        ((), {"path": "a", "height": 3}, "unexpected keyword argument 'height'"),
        (("a",), {"path": "b"}, "multiple values for argument 'path'"),
        (("a",), {"keep": True, "width": 1, "x": 0}, "unexpected keyword argument 'x'"),
    ],
)
def test_a_call_that_does_not_fit_raises_type_error(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        payload_of(resize, args, kwargs)


def test_what_a_keyword_payload_cannot_carry_is_refused() -> None:
    with pytest.raises(TypeError, match="'paths' cannot be submitted"):
        payload_of(starred, ("a", "b"), {})
    with pytest.raises(TypeError, match="'path' cannot be submitted"):
        payload_of(positional_only, ("a",), {})


def test_options_map_onto_the_api_fields() -> None:
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    options = checked_options(
        {"priority": "high", "delay": 30, "timeout": 10, "idempotency_key": "k",
         "max_retries": 2, "metadata": {"a": "b"}, "callback_url": "http://h/x", "run_at": when}
    )
    assert api_fields(options) == {
        "priority": "high", "delay_seconds": 30, "timeout_seconds": 10, "idempotency_key": "k",
        "max_retries": 2, "metadata": {"a": "b"}, "callback_url": "http://h/x",
        "run_at": "2030-01-02T03:04:05+00:00",
    }


def test_an_unknown_option_is_a_type_error_naming_the_known_ones() -> None:
    with pytest.raises(TypeError, match=r"'retries'.*known: callback_url, delay"):
        checked_options({"retries": 3})

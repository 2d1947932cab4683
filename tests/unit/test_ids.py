"""Task ids: ULIDs in Crockford base32, and runs of them that increase strictly."""

from __future__ import annotations

import pytest

from conveyor.ids import MAX_RUN, is_id, new_id, new_ids

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def decode(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + ALPHABET.index(char)
    return value


def test_an_id_holds_the_millisecond_and_reads_back_exactly() -> None:
    made = new_id(1_700_000_000.123)
    assert is_id(made) and len(made) == 26
    assert decode(made) >> 80 == 1_700_000_000_123


def test_a_run_increases_by_one_in_the_same_millisecond() -> None:
    run = new_ids(1000, 1_700_000_000.5)
    values = [decode(i) for i in run]
    assert values == list(range(values[0], values[0] + 1000))
    assert {v >> 80 for v in values} == {1_700_000_000_500}
    assert run == sorted(run)


def test_runs_start_at_random_points() -> None:
    starts = {decode(new_ids(1, 1.0)[0]) for _ in range(100)}
    assert len(starts) == 100


def test_the_largest_run_stays_in_its_millisecond() -> None:
    run = new_ids(MAX_RUN, 2.0)
    assert {decode(i) >> 80 for i in (run[0], run[-1])} == {2000}
    with pytest.raises(ValueError):
        new_ids(MAX_RUN + 1)


def test_a_run_whose_low_digits_carry_still_increases_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    low = (1 << 40) - 3  # the last 8 digits roll over after the third id
    monkeypatch.setattr("conveyor.ids.os.urandom", lambda n: (low << 1).to_bytes(n, "big"))
    run = new_ids(6, 3.0)
    values = [decode(i) for i in run]
    assert values == list(range((3000 << 80) | low, ((3000 << 80) | low) + 6))
    assert run == sorted(run) and all(is_id(i) for i in run)

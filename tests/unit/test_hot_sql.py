"""The hot path's driver SQL (``store.hot``): padded ``IN`` lists and the texts per size."""

from __future__ import annotations

from conveyor.store import hot


def test_ids_are_padded_to_a_power_of_two_with_the_last() -> None:
    assert hot.padded(["a"]) == ("a",)
    assert hot.padded(["a", "b"]) == ("a", "b")
    assert hot.padded(["a", "b", "c"]) == ("a", "b", "c", "c")
    assert len(hot.padded([str(i) for i in range(33)])) == 64
    assert len(hot.padded([str(i) for i in range(500)])) == 512


def test_start_returns_its_rows_where_the_database_can() -> None:
    for dialect, returning in (("postgresql", True), ("sqlite", True), ("mariadb", False)):
        sql, says = hot._start_sql(dialect, "format", 2)
        assert says is returning
        assert ("RETURNING" in sql) is returning
        assert sql.count("%s") == 5  # worker id, two stamps, two ids


def test_numbered_placeholders_follow_the_parameters() -> None:
    sql = hot._started_sql("numeric_dollar", 2)
    assert "IN ($1, $2)" in sql and "worker_id = $3" in sql and "started_at = $4" in sql
    assert "FOR UPDATE" not in hot._lock_sql("sqlite", "qmark", 1)
    assert hot._lock_sql("postgresql", "numeric_dollar", 1).endswith("FOR UPDATE")

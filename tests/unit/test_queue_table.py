"""``conveyor queues``: the per-tenant rows appear once some tenant but the default has work."""

from __future__ import annotations

from rich.console import Console

from conveyor.cli import tables


def rendered(data: dict[str, object]) -> str:
    console = Console(width=200, record=True)
    console.print(tables.queues(data))
    return console.export_text()


def test_tenant_rows_only_when_tenants_share_the_queues() -> None:
    alone = {"lengths": {"normal": 4}, "tenants": {"normal": {"default": 4}}}
    assert "tenant" not in rendered(alone)
    shared = {"lengths": {"normal": 5, "high": 1},
              "tenants": {"normal": {"default": 4, "acme": 1}, "high": {"acme": 1}}}
    lines = [" ".join(line.replace("│", " ").split()) for line in rendered(shared).splitlines()]
    assert "normal 5" in lines
    assert {"tenant acme 1", "tenant default 4"} <= set(lines)
    assert lines.index("high 1") < lines.index("normal 5")

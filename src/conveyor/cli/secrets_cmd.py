"""``conveyor secrets``: make a key for ``secrets.keys``, and re-seal every stored task config
with the first key (``rotate``), straight in the database."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli.apikeys import _with_store
from conveyor.cli.common import (
    OPERATIONS,
    ConfigOpt,
    DbOpt,
    JsonOpt,
    err,
    fail,
    out,
    settings_from,
    show,
)
from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    from conveyor.store.reseal import Pass

secrets_cli = typer.Typer(help="Keys of task-config secrets: make one, rotate to the first.")


def register(cli: typer.Typer) -> None:
    cli.add_typer(secrets_cli, name="secrets", rich_help_panel=OPERATIONS)


@secrets_cli.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new Fernet key for secrets.keys (CONVEYOR_SECRETS__KEYS).

    Example: CONVEYOR_SECRETS__KEYS=$(conveyor secrets generate-key),$CONVEYOR_SECRETS__KEYS
    """
    from conveyor.keyring import generate_key

    out.print(generate_key(), highlight=False, markup=False)


@secrets_cli.command("rotate")
def secrets_rotate(
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Configs per transaction.")] = 200,
    config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False,
) -> None:
    """Re-seal every stored task config with the first key of secrets.keys (and seal secrets
    stored before sealing existed). Safe to run again; then remove the old key everywhere.

    Example: CONVEYOR_SECRETS__KEYS=NEW,OLD conveyor secrets rotate
    """
    from conveyor.executors.secret_fields import secret_fields
    from conveyor.keyring import Keyring
    from conveyor.sealing import Resealed, reseal
    from conveyor.store.reseal import reseal_configs

    settings = settings_from(config, database_url=db)
    try:
        keyring = Keyring.from_settings(settings)
        if keyring.key_file is None:  # a key file is made only if a plain secret needs one
            keyring.fernets(create=False)
    except ConveyorError as exc:
        fail(str(exc), 2)
    totals = Resealed()

    def change(executor: str, stored: dict[str, object]) -> dict[str, object] | None:
        new, counts = reseal(stored, secret_fields(executor),
                             lambda: keyring.fernets(create=True))
        totals.rotated += counts.rotated
        totals.sealed += counts.sealed
        totals.current += counts.current
        return new if counts.changed else None

    done: Pass = _with_store(settings, lambda store: reseal_configs(store.db, change, batch))
    report = {"configs": done.scanned, "rewritten": done.rewritten, "raced": done.raced,
              **asdict(totals), "failed": done.failed}
    if as_json:
        show(report, True)
    else:
        err.print(
            f"{done.scanned} configs: {done.rewritten} rewritten ({totals.rotated} values "
            f"re-sealed with the first key, {totals.sealed} plain values sealed), "
            f"{totals.current} values already under the first key, {done.raced} changed "
            "meanwhile (left as the API sealed them)", highlight=False,
        )
        for label, why in done.failed.items():
            err.print(f"[red]{label}[/red]: {why}", highlight=False)
    if done.failed:
        fail(f"{len(done.failed)} configs could not be re-sealed; add back the key that sealed "
             "them (after the first) and run again")

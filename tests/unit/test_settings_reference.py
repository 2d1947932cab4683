"""docs/settings.md is the reference generated from the settings model, and lists every
setting: regenerate it with ``conveyor config reference > docs/settings.md``."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from conveyor.cli.reference import render
from conveyor.config import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    found = []
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            found += paths(field.annotation, f"{prefix}{name}.")
        else:
            found.append(prefix + name)
    return found


def test_reference_is_in_step_with_the_code() -> None:
    assert DOC.read_text() == render(), (
        "docs/settings.md is stale: run `conveyor config reference > docs/settings.md`")


def test_every_setting_is_listed_with_its_environment_name() -> None:
    text = DOC.read_text()
    for path in paths(Settings):
        env = "CONVEYOR_" + path.upper().replace(".", "__")
        assert f"| `{path}` |" in text and f"`{env}`" in text, path
    assert "durat" in text


def test_readme_links_the_reference() -> None:
    readme = (DOC.parents[1] / "README.md").read_text()
    assert "(docs/settings.md)" in readme

"""The README's code blocks, for tests that run them as written (README and tests cannot drift)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), re.S)


def snippet_containing(language: str, marker: str) -> str:
    """The one ``language`` block of the README that holds ``marker``."""
    found = [block for block in blocks(language) if marker in block]
    assert len(found) == 1, f"README has {len(found)} {language} blocks with {marker!r}"
    return found[0]

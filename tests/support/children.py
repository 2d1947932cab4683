"""What a task process imported: the start-up test asks a real one (``ProcessPool``)."""

from __future__ import annotations

import sys
from typing import Any


def imported(name: str, **_: Any) -> bool:
    return name in sys.modules

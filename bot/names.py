"""What hooks, triggers and the other things people name may be called."""

from __future__ import annotations

import re
from typing import Final

NAME_RULE: Final = '1-40 lowercase letters, digits, "-" or "_"'
_NAME: Final = re.compile(r"^[a-z0-9_-]{1,40}$")


def valid_name(text: str) -> str | None:
    """``text`` as a name (lower-cased), or None when it cannot be one (see `NAME_RULE`)."""
    name = text.strip().lower()
    return name if _NAME.match(name) else None

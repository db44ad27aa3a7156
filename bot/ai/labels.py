"""Categorisation labels, parsed once from the text a person writes.

``categorise="sales: questions about buying or prices; support: problems with the product;
billing: invoices and payments; spam"`` becomes four :class:`Label` values: entries are
separated by ``;``, a name comes before the first ``:``, and the description after it is
optional. Names are compared case-insensitively, so ``Sales`` and ``sales`` clash.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

MIN_LABELS: Final = 2
MAX_LABELS: Final = 30
MAX_NAME_CHARS: Final = 40
MAX_DESCRIPTION_CHARS: Final = 200
# Letters, digits and a few joiners; a name is what the model answers and what a rule matches.
_NAME: Final = re.compile(r"[^\W_](?:[\w\-. ]*[^\W_])?")


class LabelError(ValueError):
    """The labels text is not a usable list; the message says what to fix."""


@dataclass(frozen=True)
class Label:
    """One category the model may choose, with the description that tells it when."""

    name: str
    description: str = ""

    def __str__(self) -> str:
        return f"{self.name}: {self.description}" if self.description else self.name


def parse_labels(text: str) -> tuple[Label, ...]:
    """Parse ``"name: description; name2: description; name3"`` into labels, in order.

    Raises LabelError naming the entry at fault: an empty list, an empty or malformed name,
    a name or description that is too long, a repeated name, or too many labels.
    """
    entries = [entry.strip() for entry in text.split(";")]
    labels = [_parse_entry(entry, number) for number, entry in enumerate(entries, 1) if entry]
    if len(labels) < MIN_LABELS:
        raise LabelError(
            f"{len(labels)} label(s) given; write at least {MIN_LABELS} as "
            "'name: description; name2: description; name3'"
        )
    _check_count(labels)
    _check_unique(labels)
    return tuple(labels)


def format_labels(labels: Sequence[Label]) -> str:
    """The labels as text that ``parse_labels`` reads back to the same values."""
    return "; ".join(str(label) for label in labels)


def find_label(answer: str, labels: Sequence[Label]) -> Label | None:
    """The label named by ``answer``: exactly, else ignoring case and outer spaces."""
    for label in labels:
        if label.name == answer:
            return label
    wanted = answer.strip().casefold()
    for label in labels:
        if label.name.casefold() == wanted:
            return label
    return None


def _parse_entry(entry: str, number: int) -> Label:
    raw_name, _, raw_description = entry.partition(":")
    name, description = " ".join(raw_name.split()), " ".join(raw_description.split())
    _check_name(name, number)
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise LabelError(
            f"label {name!r}: the description is {len(description)} characters; "
            f"at most {MAX_DESCRIPTION_CHARS}"
        )
    return Label(name, description)


def _check_name(name: str, number: int) -> None:
    if not name:
        raise LabelError(f"label {number} has no name before ':'")
    if len(name) > MAX_NAME_CHARS:
        raise LabelError(f"label {name[:20]!r}...: the name is over {MAX_NAME_CHARS} characters")
    if not _NAME.fullmatch(name):
        raise LabelError(
            f"label {name!r}: a name has letters, digits, spaces, '-', '_' or '.', "
            "and starts and ends with a letter or digit"
        )


def _check_count(labels: Sequence[Label]) -> None:
    if len(labels) > MAX_LABELS:
        raise LabelError(f"{len(labels)} labels given; at most {MAX_LABELS}")


def _check_unique(labels: Sequence[Label]) -> None:
    seen: set[str] = set()
    for label in labels:
        key = label.name.casefold()
        if key in seen:
            raise LabelError(f"label {label.name!r} is given twice")
        seen.add(key)

"""Report filters: numbers, money, percentages, changes, dates and tables as people read
them in Slack, from the values JSON and CSV actually give.

Conventions shared by every filter here:

- A number is an ``int``, ``float`` or ``Decimal`` (``bool`` is not), or text that reads
  as one: ``"1234.5"``, ``"1,234"``, ``" -12 "``, ``"−3"``, ``"1e3"``.
- Missing values (``None``, Jinja's ``Undefined``, ``""``) print as ``—``; text that is
  not a number prints as it came (cut to 40 characters), so a report shows "n/a" where
  the source said "n/a"; other things (lists, dicts, booleans) print as ``—``.
  No filter raises for a value; a bad argument (``decimals="x"``) is the template's error.
- Negative numbers carry the real minus sign (U+2212): ``−1,234``.
- Rounding is half up, as people round (0.125 → 13%), not Python's half-to-even.
- Percentages are fractions: ``percent(0.12)`` is ``12%`` and ``percent(12)`` is
  ``1,200%``. `change` uses the same scale, so ``change(112, 100)`` is ``+12%``. A value
  already in percent is printed with ``number`` (``{{ x|number }}%``).
- Thousands are separated by commas and the decimal point is a dot, whatever the currency.

`table` and `fit_report` keep Slack's limits: a section block's text holds at most 3000
characters, a message's text 40,000, and a message at most 50 blocks (`split_report`).
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import ROUND_HALF_UP, Context, Decimal

from bot.slack.blocks import ELLIPSIS, MAX_BLOCKS, SECTION_TEXT_MAX

PLACEHOLDER = "—"
MINUS = "−"  # U+2212
MAX_DECIMALS = 10
# Slack's whole-message text limit; the blocks of one message have a lower, undocumented
# total (``msg_blocks_too_long`` near 13,000 characters), see `split_report`.
MESSAGE_TEXT_MAX = 40_000
BLOCKS_TEXT_MAX = 12_000

# Wide enough for any rounding below (21 integer digits + MAX_DECIMALS), so quantize
# never fails for want of precision.
_DECIMAL = Context(prec=50)
# From 10**21 on, numbers print in scientific notation: the grouped form of a Decimal
# such as 1e999999 would be a million characters long.
_HUGE = Decimal(10) ** 21
_EXPONENT_MAX = 1000
_TEXT_NUMBER_MAX = 64
_SHOWN_TEXT_MAX = 40
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_PLAIN = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_EPOCH = re.compile(r"[+-]?\d+(?:\.\d+)?")


# -- numbers ---------------------------------------------------------------------------


def parse_number(value: object) -> Decimal | None:
    """``value`` as a finite Decimal, or None when it is not a number (see the module doc)
    or is beyond 10**±1000, where arithmetic would overflow."""
    parsed = _as_decimal(value)
    if parsed is None or abs(parsed.adjusted()) > _EXPONENT_MAX:
        return None
    return parsed


def _as_decimal(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # repr is the shortest text that reads back as the same float: 0.1 stays 0.1.
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str):
        return _parse_number_text(value)
    return None


def _parse_number_text(text: str) -> Decimal | None:
    text = text.strip().replace(MINUS, "-")
    if len(text) > _TEXT_NUMBER_MAX:
        return None
    if _GROUPED.fullmatch(text):
        text = text.replace(",", "")
    elif not _PLAIN.fullmatch(text):
        return None
    parsed = Decimal(text)
    return parsed if parsed.is_finite() else None


def number(value: object, decimals: int | None = None) -> str:
    """``1234.5`` → ``1,234.5``. ``decimals=None`` shows the value's own decimals, at most
    two (two significant digits below 1: ``0.0042``); an int rounds to that many."""
    parsed = parse_number(value)
    if parsed is None:
        return _not_a_number(value)
    if decimals is None:
        return _strip_zeros(_grouped(parsed, _auto_decimals(parsed)))
    return _grouped(parsed, _checked_decimals(decimals))


def money(value: object, currency: object = "EUR", decimals: int | None = None) -> str:
    """``1234.5, 'EUR'`` → ``€1,234.50``; ``'CHF'`` → ``CHF 1,234.50``; ``'JPY'`` →
    ``¥1,235``; an unknown code → ``1,234.50 XYZ``. ``decimals=None`` uses the
    currency's usual minor digits (2, or 0 for JPY and KRW)."""
    parsed = parse_number(value)
    if parsed is None:
        return _not_a_number(value)
    code = str(currency).strip().upper()
    symbol, before, usual = _CURRENCIES.get(code, (_cut(code, 8), False, 2))
    digits = usual if decimals is None else _checked_decimals(decimals)
    amount = _grouped(abs(parsed), digits)
    sign = MINUS if _rounds_negative(parsed, digits) else ""
    if not symbol:
        return sign + amount
    return f"{sign}{symbol}{amount}" if before else f"{sign}{amount} {symbol}"


# code → (symbol, symbol before the amount, usual decimals)
_CURRENCIES: Mapping[str, tuple[str, bool, int]] = {
    "EUR": ("€", True, 2),
    "USD": ("$", True, 2),
    "GBP": ("£", True, 2),
    "JPY": ("¥", True, 0),
    "CHF": ("CHF ", True, 2),
    "CAD": ("CA$", True, 2),
    "AUD": ("A$", True, 2),
    "NZD": ("NZ$", True, 2),
    "CNY": ("CN¥", True, 2),
    "INR": ("₹", True, 2),
    "KRW": ("₩", True, 0),
    "BRL": ("R$", True, 2),
}


def percent(value: object, decimals: int = 0) -> str:
    """A fraction as a percentage: ``0.12`` → ``12%``, ``0.1234, 1`` → ``12.3%``."""
    parsed = parse_number(value)
    if parsed is None:
        return _not_a_number(value)
    return _grouped(parsed * 100, _checked_decimals(decimals)) + "%"


def change(current: object, previous: object, decimals: int = 0) -> str:
    """The relative change from ``previous`` to ``current``: ``+12%``, ``−3%``, ``±0%``
    when it rounds to nothing, ``new`` when there was nothing before (0, None, missing).

    The change is measured against the size of ``previous``, so going from −100 to −50
    is ``+50%``.
    """
    now = parse_number(current)
    before = parse_number(previous)
    if now is None:
        return _not_a_number(current)
    if before is None or before == 0:
        return "±0%" if now == 0 and before == 0 else "new"
    ratio = _DECIMAL.divide(now - before, abs(before))
    shown = _grouped(abs(ratio) * 100, _checked_decimals(decimals))
    if _rounds_to_zero(ratio * 100, _checked_decimals(decimals)):
        return f"±{shown}%"
    return f"{'+' if ratio > 0 else MINUS}{shown}%"


def _grouped(value: Decimal, decimals: int) -> str:
    """``value`` rounded half up, with thousands separators and the real minus sign."""
    if abs(value) >= _HUGE:
        return f"{MINUS if value < 0 else ''}{_DECIMAL.normalize(abs(value)):.3g}"
    rounded = value.quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_UP, _DECIMAL)
    text = f"{abs(rounded):,f}"
    return MINUS + text if rounded < 0 else text  # -0.00 compares equal to 0: no sign


def _rounds_to_zero(value: Decimal, decimals: int) -> bool:
    return (
        abs(value) < _HUGE
        and value.quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_UP, _DECIMAL).is_zero()
    )


def _rounds_negative(value: Decimal, decimals: int) -> bool:
    return value < 0 and not _rounds_to_zero(value, decimals)


def _auto_decimals(value: Decimal) -> int:
    if value == value.to_integral_value() or abs(value) >= 1:
        return 2
    # 0.0042 → 4 decimals: two significant digits, at most six decimals
    return min(6, max(2, -value.adjusted() + 1))


def _strip_zeros(text: str) -> str:
    if "." not in text or "e" in text:
        return text
    return text.rstrip("0").rstrip(".")


def _checked_decimals(decimals: object) -> int:
    if isinstance(decimals, bool) or not isinstance(decimals, int):
        raise TypeError(f"decimals must be a whole number, not {decimals!r}")
    return min(max(decimals, 0), MAX_DECIMALS)


def _not_a_number(value: object) -> str:
    if isinstance(value, str) and value.strip():
        return _cut(value.strip(), _SHOWN_TEXT_MAX)
    return PLACEHOLDER


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


# -- dates -----------------------------------------------------------------------------


def date_text(value: object, fmt: str | None = None, tz: tzinfo = UTC) -> str:
    """A moment as ``strftime(fmt)`` in the zone ``tz`` (the trigger's zone).

    Reads ISO 8601 text (``2024-05-01T12:00:00Z``, ``2024-05-01 14:00+02:00``), RFC 2822
    (``Wed, 01 May 2024 12:00:00 GMT``), epoch seconds (numbers or digits; beyond 10**11
    they are taken as milliseconds, as JavaScript writes them), and ``date``/``datetime``
    objects. A moment with a zone or offset is converted to ``tz``; one without (a
    date-only ``2024-05-01``, a naive ``2024-05-01 09:30``) is shown as written, since
    shifting a time whose zone is unknown could move it by hours or to the day before.
    ``fmt=None`` is ``%a %d %b %Y`` for dates and ``%a %d %b %Y %H:%M`` for times.
    """
    moment = parse_moment(value, tz)
    if moment is None:
        return _not_a_number(value)
    if fmt is None:
        fmt = "%a %d %b %Y %H:%M" if isinstance(moment, datetime) else "%a %d %b %Y"
    try:
        return moment.strftime(str(fmt))
    except ValueError:  # e.g. an embedded NUL
        return moment.isoformat()


def parse_moment(value: object, tz: tzinfo = UTC) -> datetime | date | None:
    """``value`` as an aware datetime in ``tz``, a plain date, or None (see `date_text`)."""
    if isinstance(value, datetime):
        return value.astimezone(tz) if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return value
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return _from_epoch(float(value), tz)
    if isinstance(value, str) and len(value.strip()) <= _TEXT_NUMBER_MAX:
        return _parse_moment_text(value.strip(), tz)
    return None


def _parse_moment_text(text: str, tz: tzinfo) -> datetime | date | None:
    # Epoch seconds in text have nine digits or more (from 1973 on); fewer digits are
    # a year or an ISO basic date ("20240501").
    if _EPOCH.fullmatch(text) and len(text.lstrip("+-").split(".")[0]) >= 9:
        return _from_epoch(float(text), tz)
    for parse in (date.fromisoformat, datetime.fromisoformat, email.utils.parsedate_to_datetime):
        try:
            moment = parse(text)
        except (ValueError, TypeError, IndexError):
            continue
        return parse_moment(moment, tz)
    return None


def _from_epoch(seconds: float, tz: tzinfo) -> datetime | None:
    if abs(seconds) >= 1e11:
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, tz)
    except (OverflowError, OSError, ValueError):
        return None


# -- tables ----------------------------------------------------------------------------

Measure = Callable[[str], int]
_COLUMN_GAP = "  "
_MAX_COLUMNS = 30
# A cell never closes the code block around the table: ``` would end it early.
_BACKTICK_STANDIN = "ˋ"  # U+02CB, looks like a backtick
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


@dataclass(frozen=True)
class _Grid:
    header: tuple[str, ...] | None
    rows: tuple[tuple[str, ...], ...]
    right: tuple[bool, ...]  # right-aligned (numeric) columns


def table(
    rows: object,
    columns: object = None,
    max_rows: int = 20,
    max_chars: int = SECTION_TEXT_MAX,
    *,
    max_cell: int = 30,
    measure: Measure = len,
) -> str:
    """Rows as aligned columns in a ``` code block, with "and N more rows" after it when
    not all fit. The result's ``measure`` never exceeds ``max_chars``.

    ``rows`` is a list of dicts (JSON objects, CSV rows) or of lists. ``columns`` picks
    and orders dict keys (default: the keys of the rows shown, in order of appearance);
    for lists it names the leading positions as a header. It may be a list or
    ``"name, total"``. Number columns (every non-empty cell a number) are right-aligned;
    numbers are printed with `number`, text as it came; cells are cut to ``max_cell``
    columns. Nothing is escaped here (a caller that escapes afterwards passes a
    ``measure`` that counts the escaped length), but backticks and line breaks in cells
    are replaced so that no cell can end the code block.
    """
    items = _row_list(rows)
    if not items:
        return _within("(no rows)", max_chars, measure)
    shown = min(max(_checked_int(max_rows, "max_rows"), 0), len(items), max(max_chars, 0))
    names = _column_names(columns)
    if names is None and _has_dicts(items[: max(shown, 1)]):
        names = _keys_in_order(items[: max(shown, 1)])  # so that no rows shown still name them
    if shown == 0 and names is None:  # lists, no header: nothing to show at all
        return _within(f"({_plural(len(items), 'row')} not shown)", max_chars, measure)
    cell = max(_checked_int(max_cell, "max_cell"), 1)
    while True:
        grid = _grid(items[:shown], names, cell)
        if not grid.right:  # no columns at all: rows of empty dicts, or columns=[]
            return _within(f"({_plural(len(items), 'row')}, no columns)", max_chars, measure)
        fitting = _most_rows_within(grid, len(items), max_chars, measure)
        if fitting is not None:
            return fitting
        if cell == 1:
            break
        cell //= 2
    return _within(f"({_plural(len(items), 'row')}: too wide to show)", max_chars, measure)


def _row_list(rows: object) -> list[object]:
    if isinstance(rows, Mapping):
        return [rows]
    if isinstance(rows, str | bytes) or not isinstance(rows, Iterable):
        return []
    return list(rows)


def _column_names(columns: object) -> list[str] | None:
    if columns is None:
        return None
    if isinstance(columns, str):
        return [name.strip() for name in columns.split(",") if name.strip()]
    if isinstance(columns, Iterable):
        return [str(name) for name in columns][:_MAX_COLUMNS]
    raise TypeError(f"columns must be a list of names, not {columns!r}")


def _grid(rows: Sequence[object], names: list[str] | None, cell: int) -> _Grid:
    header, values = _dict_cells(rows, names) if _has_dicts(rows) else _list_cells(rows, names)
    texts = tuple(tuple(_cell_text(value, cell) for value in row) for row in values)
    width = len(header) if header is not None else len(values[0]) if values else 0
    right = tuple(_is_number_column([row[i] for row in values]) for i in range(width))
    shown_header = None if header is None else tuple(_clean(name, cell) for name in header)
    return _Grid(shown_header, texts, right)


def _has_dicts(rows: Sequence[object]) -> bool:
    return any(isinstance(row, Mapping) for row in rows)


def _dict_cells(
    rows: Sequence[object], names: list[str] | None
) -> tuple[list[str], list[list[object]]]:
    keys = names if names is not None else _keys_in_order(rows)
    return keys, [_dict_row(row, keys) for row in rows]


def _dict_row(row: object, keys: list[str]) -> list[object]:
    if isinstance(row, Mapping):
        return [row.get(key, "") for key in keys]
    return _positions(row, len(keys))  # a list among dicts fills the columns in order


def _list_cells(
    rows: Sequence[object], names: list[str] | None
) -> tuple[list[str] | None, list[list[object]]]:
    count = len(names) if names is not None else max(map(_row_width, rows), default=0)
    count = min(count, _MAX_COLUMNS)
    return names, [_positions(row, count) for row in rows]


def _keys_in_order(rows: Sequence[object]) -> list[str]:
    keys: dict[str, None] = {}
    for row in rows:
        if isinstance(row, Mapping):
            keys.update((str(key), None) for key in row)
    return list(keys)[:_MAX_COLUMNS]


def _row_width(row: object) -> int:
    return len(row) if isinstance(row, Sequence) and not isinstance(row, str | bytes) else 1


def _positions(row: object, count: int) -> list[object]:
    cells = list(row) if isinstance(row, Sequence) and not isinstance(row, str | bytes) else [row]
    return (cells + [""] * count)[:count]


def _is_number_column(values: Sequence[object]) -> bool:
    present = [value for value in values if value is not None and value != ""]
    return bool(present) and all(parse_number(value) is not None for value in present)


def _cell_text(value: object, width: int) -> str:
    if value is None:
        return PLACEHOLDER
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        text = number(value)
    elif isinstance(value, str):
        text = value
    elif isinstance(value, Mapping | list | tuple):
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        text = str(value)  # Undefined prints as ""
    return _clean(text, width)


def _clean(text: str, width: int) -> str:
    text = _CONTROL.sub(" ", text).replace("`", _BACKTICK_STANDIN)
    return _cut_to_width(text, width)


def _most_rows_within(grid: _Grid, total: int, limit: int, measure: Measure) -> str | None:
    """The table with as many of the grid's rows as fit in ``limit``; None if none do."""
    # Without a header, a table must show a row; with one, the header alone says something.
    low, high, best = (0 if grid.header else 1), len(grid.rows), None
    while low <= high:  # the size grows with the rows shown (the note shrinks by ≤ 1)
        middle = (low + high) // 2
        text = _render(grid, middle, total)
        if measure(text) <= limit:
            low, best = middle + 1, text
        else:
            high = middle - 1
    return best


def _render(grid: _Grid, count: int, total: int) -> str:
    rows = grid.rows[:count]
    lines = [] if grid.header is None else [grid.header]
    widths = [max(map(_display_width, column)) for column in zip(*lines, *rows, strict=True)]
    body = [_line(row, widths, grid.right) for row in [*lines, *rows]]
    if grid.header is not None:
        body.insert(1, _COLUMN_GAP.join("-" * width for width in widths))
    block = "```\n" + "\n".join(body) + "\n```"
    hidden = total - count
    return f"{block}\nand {_plural(hidden, 'more row')}" if hidden else block


def _line(cells: Sequence[str], widths: Sequence[int], right: Sequence[bool]) -> str:
    padded = [
        _pad(cell, width, right[index] if index < len(right) else False)
        for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
    ]
    return _COLUMN_GAP.join(padded).rstrip()


def _pad(text: str, width: int, right: bool) -> str:
    spaces = " " * (width - _display_width(text))
    return spaces + text if right else text + spaces


def _display_width(text: str) -> int:
    """Columns ``text`` takes in a monospace font: wide (CJK, emoji) characters take two,
    combining marks none."""
    if text.isascii():  # the common case, and control characters are replaced already
        return len(text)
    return sum(_char_width(char) for char in text)


def _char_width(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _cut_to_width(text: str, width: int) -> str:
    if _display_width(text) <= width:
        return text
    kept, used = [], _display_width(ELLIPSIS)
    for char in text:
        used += _char_width(char)
        if used > width:
            break
        kept.append(char)
    return "".join(kept) + ELLIPSIS


def _checked_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a whole number, not {value!r}")
    return value


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


# -- fitting a report into Slack -------------------------------------------------------

_FENCE = "```"


def fit_report(text: str, limit: int = SECTION_TEXT_MAX, *, measure: Measure = len) -> str:
    """``text`` if it fits in ``limit``; otherwise as many whole lines as fit, followed by
    "(cut: N more lines)". A code block left open by the cut is closed. A first line too
    long on its own is cut within the line ("(cut: N more characters)" when it is the
    only line). The result's ``measure`` never exceeds ``limit``.
    """
    if measure(text) <= limit:
        return text
    lines = text.split("\n")
    kept = _most_lines_within(lines, limit, measure)
    if kept is not None:
        return kept
    first = lines[0]
    note = (
        f"(cut: {_plural(len(lines) - 1, 'more line')})"
        if len(lines) > 1
        else f"(cut: {_plural(len(first), 'more character')})"
    )
    room = limit - measure("\n" + note)
    cut = _prefix_within(first, room, measure)
    if cut is not None:
        # the count of characters is of what was left out
        if len(lines) == 1:
            note = f"(cut: {_plural(len(first) - len(cut) + len(ELLIPSIS), 'more character')})"
        return _within(_closed(cut) + "\n" + note, limit, measure)
    return _within(note, limit, measure)


def _most_lines_within(lines: list[str], limit: int, measure: Measure) -> str | None:
    low, high, best = 1, len(lines) - 1, None
    while low <= high:
        middle = (low + high) // 2
        text = _cut_lines(lines, middle)
        if measure(text) <= limit:
            low, best = middle + 1, text
        else:
            high = middle - 1
    return best


def _cut_lines(lines: list[str], count: int) -> str:
    hidden = len(lines) - count
    return _closed("\n".join(lines[:count])) + f"\n(cut: {_plural(hidden, 'more line')})"


def _closed(text: str) -> str:
    """``text`` with a code block it leaves open closed again."""
    return text + "\n" + _FENCE if text.count(_FENCE) % 2 else text


_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")  # a cut must not leave half of "&amp;"


def _prefix_within(text: str, limit: int, measure: Measure) -> str | None:
    """The longest prefix of ``text`` that, with "…" and any open code block closed,
    measures at most ``limit``; None when not even "…" fits."""
    low, high, best = 0, len(text), None
    while low <= high:
        middle = (low + high) // 2
        candidate = _closed(_PARTIAL_ENTITY.sub("", text[:middle]) + ELLIPSIS)
        if measure(candidate) <= limit:
            low, best = middle + 1, candidate
        else:
            high = middle - 1
    return best


def _within(text: str, limit: int, measure: Measure) -> str:
    """A short message cut to ``limit``, or "" when nothing of it fits."""
    if measure(text) <= limit:
        return text
    return _prefix_within(text, limit, measure) or ""


def split_report(
    text: str,
    section_limit: int = SECTION_TEXT_MAX,
    max_sections: int = MAX_BLOCKS,
    total_limit: int = BLOCKS_TEXT_MAX,
    *,
    measure: Measure = len,
) -> list[str]:
    """A long report as the texts of consecutive section blocks, each within
    ``section_limit``, split between lines; a code block split across sections is
    closed at the end of one and reopened at the start of the next. Past
    ``max_sections`` sections or ``total_limit`` characters in all, the last section
    ends in "(cut: N more lines)".

    ``total_limit`` defaults to 12,000: Slack refuses a message whose blocks hold about
    13,000 characters in all (``msg_blocks_too_long``), below the documented limits.
    """
    lines = text.split("\n")
    sections: list[str] = []
    used = 0
    start = 0
    while start < len(lines):
        # The last section is the one after which less than a whole section's room is
        # left, so the "(cut: …)" note always has a section of its own to go in.
        last = len(sections) + 1 >= max_sections or total_limit - used < 2 * section_limit
        room = min(section_limit, total_limit - used)
        reopen = _opens(lines, start)
        count = _lines_fitting(lines, start, room, reopen, measure)
        if count == len(lines) - start or last or count == 0:
            rest = _reopened(lines[start:], reopen)
            sections.append(fit_report(rest, room, measure=measure))
            break
        piece = _reopened(lines[start : start + count], reopen)
        sections.append(_closed(piece))
        used += measure(sections[-1])
        start += count
    return [section for section in sections if section]


def _opens(lines: list[str], start: int) -> bool:
    """Whether line ``start`` is inside a code block opened by an earlier line."""
    return "\n".join(lines[:start]).count(_FENCE) % 2 == 1


def _reopened(lines: list[str], reopen: bool) -> str:
    return "\n".join([_FENCE, *lines] if reopen else lines)


def _lines_fitting(lines: list[str], start: int, room: int, reopen: bool, measure: Measure) -> int:
    """How many lines from ``start`` fit in one section, its code block closed."""
    low, high, best = 1, len(lines) - start, 0
    while low <= high:
        middle = (low + high) // 2
        if measure(_closed(_reopened(lines[start : start + middle], reopen))) <= room:
            low, best = middle + 1, middle
        else:
            high = middle - 1
    return best

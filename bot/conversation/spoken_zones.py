"""Time zones as people say them: ``Europe/London``, ``London time``, ``CET``, ``9am PT``.

`zone_named` answers one question: which IANA zone a spoken name stands for, None when the
name is no zone the bot knows. Abbreviations that mean several zones (``IST`` is India,
Ireland and Israel) are `AMBIGUOUS`: the bot asks rather than picks.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Final
from zoneinfo import available_timezones

ABBREVIATIONS: Final[Mapping[str, str]] = {
    "utc": "UTC",
    "gmt": "Europe/London",
    "bst": "Europe/London",
    "wet": "Europe/Lisbon",
    "cet": "Europe/Paris",
    "cest": "Europe/Paris",
    "eet": "Europe/Athens",
    "eest": "Europe/Athens",
    "msk": "Europe/Moscow",
    "pt": "America/Los_Angeles",
    "pst": "America/Los_Angeles",
    "pdt": "America/Los_Angeles",
    "mt": "America/Denver",
    "mst": "America/Denver",
    "mdt": "America/Denver",
    "ct": "America/Chicago",
    "cdt": "America/Chicago",
    "et": "America/New_York",
    "est": "America/New_York",
    "edt": "America/New_York",
    "jst": "Asia/Tokyo",
    "kst": "Asia/Seoul",
    "sgt": "Asia/Singapore",
    "hkt": "Asia/Hong_Kong",
    "aest": "Australia/Sydney",
    "aedt": "Australia/Sydney",
    "nzst": "Pacific/Auckland",
    "nzdt": "Pacific/Auckland",
}
"""Abbreviations read one way; the summary names the IANA zone chosen."""

AMBIGUOUS: Final[Mapping[str, tuple[str, ...]]] = {
    "ist": ("Asia/Kolkata", "Europe/Dublin", "Asia/Jerusalem"),
    "cst": ("America/Chicago", "Asia/Shanghai"),
    "ast": ("America/Halifax", "Asia/Riyadh"),
}
"""Abbreviations with several common meanings: asked about, with these as the answers."""

_REGIONS: Final[Mapping[str, str]] = {
    "pacific": "America/Los_Angeles",
    "mountain": "America/Denver",
    "central": "America/Chicago",
    "eastern": "America/New_York",
    "atlantic": "America/Halifax",
    "central european": "Europe/Paris",
    "san francisco": "America/Los_Angeles",
    "sf": "America/Los_Angeles",
    "seattle": "America/Los_Angeles",
    "boston": "America/New_York",
    "washington": "America/New_York",
    "munich": "Europe/Berlin",
    "frankfurt": "Europe/Berlin",
    "hamburg": "Europe/Berlin",
    "barcelona": "Europe/Madrid",
    "milan": "Europe/Rome",
    "geneva": "Europe/Zurich",
    "mumbai": "Asia/Kolkata",
    "bangalore": "Asia/Kolkata",
    "delhi": "Asia/Kolkata",
    "india": "Asia/Kolkata",
    "beijing": "Asia/Shanghai",
    "uk": "Europe/London",
    "japan": "Asia/Tokyo",
}


def zone_named(spoken: str) -> str | None:
    """The IANA zone for ``spoken`` (an IANA name in any case, an unambiguous abbreviation,
    a city or a region such as "pacific"), or None."""
    lowered = " ".join(spoken.lower().replace("_", " ").split())
    if not lowered:
        return None
    if "/" in lowered:
        return _iana_keys().get(lowered)
    # A city before an old single-word alias: "singapore" is Asia/Singapore, not Singapore.
    return (
        ABBREVIATIONS.get(lowered)
        or _REGIONS.get(lowered)
        or _cities().get(lowered)
        or _iana_keys().get(lowered)
    )


def is_ambiguous(spoken: str) -> bool:
    """True for an abbreviation with several common meanings (``IST``)."""
    return spoken.lower() in AMBIGUOUS


@cache
def _iana_keys() -> dict[str, str]:
    return {key.lower().replace("_", " "): key for key in available_timezones()}


@cache
def _cities() -> dict[str, str]:
    """ "london" → Europe/London, "new york" → America/New_York: the last part of each
    canonical ``Area/City`` key (the deprecated aliases such as ``US/Pacific`` are skipped)."""
    cities: dict[str, str] = {}
    for key in sorted(available_timezones()):
        area, _, city = key.rpartition("/")
        if area.split("/")[0] in _AREAS and city:
            cities.setdefault(city.lower().replace("_", " "), key)
    return cities


_AREAS: Final = frozenset(
    {"Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe", "Indian"}
    | {"Pacific"}
)

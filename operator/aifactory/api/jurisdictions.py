"""Countries, subdivisions and jurisdiction groups, in one place.

Sovereignty rules name either ISO 3166-1 alpha-2 country codes or group names (EU, EEA,
FIVE_EYES). Admission, the CRD schema and the placement engine must agree on what a group
contains, so every caller goes through this module instead of keeping its own list.

Country and subdivision codes come from `pycountry` (the ISO 3166-1 and ISO 3166-2 tables of
Debian's iso-codes). The CRDs embed them, so the version is pinned in pyproject.toml: a new
version of the tables means `make crds` and a new CRD release, never a silent change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache

import pycountry

#: ISO 3166-1 alpha-2 officially assigned codes (249 entries in the pinned pycountry).
ISO_COUNTRIES: frozenset[str] = frozenset(c.alpha_2 for c in pycountry.countries)

EU: frozenset[str] = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()  # noqa: SIM905
)
EEA: frozenset[str] = EU | frozenset({"IS", "LI", "NO"})
FIVE_EYES: frozenset[str] = frozenset({"US", "GB", "CA", "AU", "NZ"})

#: Group name -> member countries. Group names are what policies and modules may use as tags.
GROUPS: dict[str, frozenset[str]] = {"EU": EU, "EEA": EEA, "FIVE_EYES": FIVE_EYES}

#: Every token a jurisdiction list may contain: a country code or a group name.
JURISDICTION_TOKENS: frozenset[str] = ISO_COUNTRIES | frozenset(GROUPS)


def is_country(code: str) -> bool:
    """True for an officially assigned ISO 3166-1 alpha-2 code (upper case)."""
    return code in ISO_COUNTRIES


def is_jurisdiction(token: str) -> bool:
    """True for a country code or a known group name."""
    return token in JURISDICTION_TOKENS


@cache
def subdivisions() -> Mapping[str, frozenset[str]]:
    """Country code -> its ISO 3166-2 subdivision codes (e.g. NO -> {NO-03, NO-11, ...}).

    Every level counts (Iceland's regions IS-1 and municipalities IS-RKV alike); countries
    without subdivisions are absent. Loaded on first use: about 5,000 entries.
    """
    out: dict[str, set[str]] = {}
    for sub in pycountry.subdivisions:
        out.setdefault(sub.country_code, set()).add(sub.code)
    return {country: frozenset(codes) for country, codes in out.items()}


def is_subdivision(code: str, country: str) -> bool:
    """True when `code` is an ISO 3166-2 subdivision code of `country` (e.g. NO-03, NO)."""
    return code in subdivisions().get(country, frozenset())


def subdivision_name(code: str) -> str | None:
    """The English name of an ISO 3166-2 code (NO-03 -> Oslo), or None when unassigned."""
    sub = pycountry.subdivisions.get(code=code)  # type: ignore[no-untyped-call]
    return None if sub is None else str(sub.name)


def groups_of(country: str) -> frozenset[str]:
    """Group names a country belongs to by membership (not by a module's extra tags)."""
    return frozenset(name for name, members in GROUPS.items() if country in members)


def expand(tokens: Iterable[str]) -> frozenset[str]:
    """Countries named by a list of country codes and group names."""
    out: set[str] = set()
    for token in tokens:
        out |= GROUPS.get(token, frozenset({token}))
    return frozenset(out)


def tags_of(country: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Every jurisdiction token a place answers to: its country, its groups, and extra tags.

    A module's `location.jurisdictions` adds tags on top of what its country implies.
    """
    return frozenset({country}) | groups_of(country) | frozenset(extra)

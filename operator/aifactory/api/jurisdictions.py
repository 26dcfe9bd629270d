"""Countries and jurisdiction groups, in one place.

Sovereignty rules name either ISO 3166-1 alpha-2 country codes or group names (EU, EEA,
FIVE_EYES). Admission, the CRD schema and the placement engine must agree on what a group
contains, so every caller goes through this module instead of keeping its own list.
"""

from __future__ import annotations

from collections.abc import Iterable

#: ISO 3166-1 alpha-2 officially assigned codes (249 entries).
ISO_COUNTRIES: frozenset[str] = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
    """.split()  # noqa: SIM905 - a block of codes reads better than 249 quoted strings
)

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

"""Data residency (SameJurisdictionAsDemand), per demand region.

A replica serving region r may run on module m only if m's country is r's country, or both
belong to a group named in the policy's allowedJurisdictions (the module by its country or its
extra tags, the region by its country). Each bound Enforce policy with this rule applies.
"""

from __future__ import annotations

import numpy as np

from aifactory.api.jurisdictions import GROUPS
from aifactory.placement.framework import BoolArray, RegionVerdicts
from aifactory.placement.model import PolicyView
from aifactory.placement.state import FleetState, WorkloadState

NAME = "DataResidency"
REASON_RESIDENCY = "data residency forbids serving {region} ({country})"
REASON_NO_COUNTRY = "data residency: region {region} has no country"
SAME_JURISDICTION = "SameJurisdictionAsDemand"


def allowed_for(fleet: FleetState, policy: PolicyView, country: str) -> BoolArray:
    """Modules one policy lets serve users in `country`; cached per (policy, country)."""
    key = ("residency", policy, country)
    hit = fleet.cache.get(key)
    if hit is not None:
        return hit  # type: ignore[return-value]
    ok = fleet.country_mask([country])
    for token in policy.allowed_jurisdictions:
        if token in GROUPS and country in GROUPS[token]:
            ok = ok | fleet.tag_mask(token)
    fleet.cache[key] = ok
    return ok


def filter(fleet: FleetState, ws: WorkloadState) -> RegionVerdicts:
    """Regions without a country cannot be proven compliant and are served by no module."""
    n_regions = len(ws.region_names)
    ok = np.ones((n_regions, fleet.n), np.bool_)
    reasons = [""] * n_regions
    policies = [p for p in ws.binding.enforce if p.data_residency == SAME_JURISDICTION]
    if not policies or not ws.has_demand:
        return RegionVerdicts(NAME, ok, reasons)
    for r, (region, country) in enumerate(zip(ws.region_names, ws.region_countries, strict=True)):
        if country is None:
            ok[r] = False
            reasons[r] = REASON_NO_COUNTRY.format(region=region)
            continue
        for policy in policies:
            ok[r] &= allowed_for(fleet, policy, country)
        reasons[r] = REASON_RESIDENCY.format(region=region, country=country)
    return RegionVerdicts(NAME, ok, reasons)

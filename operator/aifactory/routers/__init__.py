"""InferenceRouters: edge-first model cascades. Pure parts, shared by the operator and the CLI.

* `tiers`: the shares and demand in effect, and every tier deployment's derived demand;
* `routing`: weights per region and tier from Ready replicas (make-before-break);
* `figures`: mean RTT and gCO2e per 1,000 requests, per tier, blended, and the what-if of the
  largest tier serving everything;
* `status`: a router's status and conditions;
* `export`: the routing JSON, its ConfigMap and the Gateway API HTTPRoutes of member clusters.

The controller side (indexes, live signals, status writes, HTTPRoutes in members) is
`aifactory.controllers.routers`. A simulator or any other offline tool derives tier demand with
`derive` + `with_tiers` before converting deployments for the engine, as `aifactoryctl place`
does (cli/place.py).
"""

from .figures import Figures, blend, decision_figures, largest_tier_what_if
from .routing import ready_routing
from .tiers import (
    RouterSignals,
    RouterView,
    Shares,
    TierDemand,
    TierPlan,
    TierProblem,
    apply,
    derive,
    effective_shares,
    with_tiers,
)

__all__ = [
    "Figures",
    "RouterSignals",
    "RouterView",
    "Shares",
    "TierDemand",
    "TierPlan",
    "TierProblem",
    "apply",
    "blend",
    "decision_figures",
    "derive",
    "effective_shares",
    "largest_tier_what_if",
    "ready_routing",
    "with_tiers",
]

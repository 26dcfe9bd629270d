"""The operator's controllers: read, plan, execute, write.

* `planner` decides (pure): the next placement of a deployment, member actions with their
  make-before-break guards, status, conditions and Events;
* `fleet`, `modules`, `policies`, `admission` are the other pure parts;
* `executor` and `writer` are the only code that writes to member clusters and to the hub;
* `cycle` and `loop` read the caches, call the planner and hand its output over;
* `handlers` registers the kopf handlers, which only read and queue.

Nothing registers at import: the entry point calls `setup(registry, settings)`.
"""

from __future__ import annotations

import kopf

from aifactory.serving import Endpoints
from aifactory.settings import OperatorSettings

from .handlers import register
from .startup import runtime_factory


def setup(
    registry: kopf.OperatorRegistry, settings: OperatorSettings, endpoints: Endpoints | None = None
) -> None:
    """Register every handler of the operator on `registry`; `endpoints` (the HTTP server's)
    learn readiness and views once the runtime exists."""
    register(registry, runtime_factory(settings, endpoints), webhook=settings.webhook_enabled)


__all__ = ["setup"]

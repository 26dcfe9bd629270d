"""kopf handlers, thin by design: read the fleet, call the engine, write members and status.

Importing this package registers every handler with kopf (`kopf run -m aifactory.controllers`
works too). Settings are read at import, so timers use the configured intervals.
"""

from . import admission, deployments, modules, policies, startup, world

__all__ = ["admission", "deployments", "modules", "policies", "startup", "world"]

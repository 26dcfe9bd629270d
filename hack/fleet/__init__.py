"""The local fleet: real Kubernetes control planes (hub + members) as processes on loopback."""

from .fleet import HUB, Fleet, FleetConfig, FleetError, NodePool
from .tools import ToolError, bin_dir, binary

__all__ = [
    "HUB",
    "Fleet",
    "FleetConfig",
    "FleetError",
    "NodePool",
    "ToolError",
    "bin_dir",
    "binary",
]

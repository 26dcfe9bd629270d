"""Plugin contracts shared by filters, scores and the pipeline, after kube-scheduler's framework.

A filter answers for every module at once (numpy vectors), because answering module by module
in Python would cost milliseconds per thousand modules. The answer is data: a code per module
(Success, Unschedulable = could fit later, UnschedulableAndUnresolvable = never fits) and the
index of a reason string, so "does not fit" never raises and can be explained and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from aifactory.placement.state import FleetState, WorkloadState

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class Code(IntEnum):
    """How a module answered a filter; higher is worse, so the worst of several is `max`."""

    SUCCESS = 0
    #: Could fit later: capacity, power, readiness, a cordon, live energy signals.
    UNSCHEDULABLE = 1
    #: Never fits unless the deployment, the policy or the module's spec changes.
    UNSCHEDULABLE_AND_UNRESOLVABLE = 2


@dataclass(frozen=True, slots=True)
class Status:
    """One module's answer to one filter: code, reasons and the plugin that gave them."""

    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def ok(self) -> bool:
        """True when the module passed."""
        return self.code == Code.SUCCESS


@dataclass(slots=True)
class Verdicts:
    """A module-level filter's answer for every module of the fleet.

    `reason_ids[i]` indexes `reasons` (-1 on success). Reasons are shared strings, not one per
    module, so the failure message can count them with a bincount.
    """

    plugin: str
    codes: npt.NDArray[np.int8]
    reason_ids: npt.NDArray[np.int32]
    reasons: list[str] = field(default_factory=list)

    @classmethod
    def passing(cls, plugin: str, n: int) -> Verdicts:
        """Every module passes (the plugin has nothing to check for this deployment)."""
        return cls(plugin, np.zeros(n, np.int8), np.full(n, -1, np.int32), [])

    @classmethod
    def from_mask(cls, plugin: str, ok: BoolArray, reason: str, code: Code) -> Verdicts:
        """One reason and one code for every module where `ok` is false."""
        codes = np.where(ok, 0, int(code)).astype(np.int8)
        ids = np.where(ok, -1, 0).astype(np.int32)
        return cls(plugin, codes, ids, [reason])

    def add(self, fail: BoolArray, reason: str, code: Code) -> None:
        """Record `reason` for modules in `fail` that have not failed this plugin yet.

        Checks are added most specific first; a module keeps the first reason that hit it.
        """
        fresh = fail & (self.codes == 0)
        if not fresh.any():
            return
        self.reasons.append(reason)
        self.codes[fresh] = int(code)
        self.reason_ids[fresh] = len(self.reasons) - 1

    @property
    def ok(self) -> BoolArray:
        """Modules that passed."""
        out: BoolArray = self.codes == 0
        return out

    def status(self, i: int) -> Status:
        """The answer for module index `i`, as a Status."""
        code = Code(int(self.codes[i]))
        if code == Code.SUCCESS:
            return Status(plugin=self.plugin)
        return Status(code, (self.reasons[int(self.reason_ids[i])],), self.plugin)


@dataclass(slots=True)
class RegionVerdicts:
    """A per-region filter's answer: may module m serve demand region r?

    The reason depends only on the region ("latency > 50 ms for ap-south"), so one string per
    region suffices. Region filters never fit later: they are UnschedulableAndUnresolvable.
    """

    plugin: str
    ok: BoolArray  # (regions, modules)
    reasons: list[str]  # one per region

    def statuses(self, i: int) -> list[tuple[int, Status]]:
        """(region index, Status) for each region module `i` may not serve."""
        out: list[tuple[int, Status]] = []
        for r in np.flatnonzero(~self.ok[:, i]):
            reason = self.reasons[int(r)]
            out.append(
                (int(r), Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (reason,), self.plugin))
            )
        return out


ModuleFilterFn = Callable[["FleetState", "WorkloadState"], Verdicts]
RegionFilterFn = Callable[["FleetState", "WorkloadState"], RegionVerdicts]


CacheKeyFn = Callable[["WorkloadState"], Hashable | None]


@dataclass(frozen=True, slots=True)
class ModuleFilter:
    """A filter whose answer is the same for every region a module might serve.

    `key` names what the answer depends on (None: do not cache). Thousands of deployments
    share a few GPU shapes, policies and energy rules, so the fleet-wide mode computes each
    distinct answer once per cycle.
    """

    name: str
    filter: ModuleFilterFn
    key: CacheKeyFn | None = None


@dataclass(frozen=True, slots=True)
class RegionFilter:
    """A filter answering per (demand region, module) pair."""

    name: str
    filter: RegionFilterFn

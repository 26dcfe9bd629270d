"""The reconcile planner: what should happen to one InferenceDeployment now. Pure.

(desired state, observed member state, fleet view, engine decision, clock) -> a plan: the next
placement, the member actions with their make-before-break guards, status, conditions, Events.
No I/O happens here; the placement loop reads, calls this, hands the actions to the executor
and writes what it returns. The safety rules of the operator live in this module:

1. **Make-before-break is the rule.** A replica leaves a module only once its replacement is
   Ready, whatever the reason it leaves (drain, energy rule, rebalance, demand shift, policy
   change, module deletion, a cluster's return). Two exceptions remove at once: the module is
   unusable (gone, or NotReady past tolerationSeconds) and none of its replicas is seen Ready,
   or a bound Enforce sovereignty rule forbids it (compliance wins; the Event says so). A
   replica that serves nothing yet (not Ready on a cluster we see) has nothing to break: it
   moves at once, outside the budget.
2. **The disruption budget bounds every voluntary move**: at most `budget` replicas of one
   deployment move per step, and a step starts only when the previous one is Ready.
3. **A replica with nowhere to go stays** (and the status says why).
4. **Nothing is deleted or shrunk on the strength of a view we do not have**: a cluster that is
   unreachable, or whose caches have not re-listed since it came back, is left alone.
5. **Replicas Pending longer than pendingTimeout** are reported and re-placed elsewhere.
6. **Zero wanted and zero placed is Ready.**
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aifactory.api import (
    Condition,
    ConditionStatus,
    HeldReplicas,
    InferenceDeployment,
    InferenceDeploymentStatus,
    ModulePlacement,
    RegionRouting,
    RouteTarget,
    Unsatisfied,
    set_condition,
)
from aifactory.placement import CurrentAssignment, Decision

#: (region, module) -> replicas; region "" for a deployment without demand regions.
Cells = dict[tuple[str, str], int]

# Condition types (kstatus: Ready, Reconciling, Stalled; ours: Placed, Compliant, Degraded).
READY = "Ready"
PLACED = "Placed"
RECONCILING = "Reconciling"
STALLED = "Stalled"
DEGRADED = "Degraded"
COMPLIANT = "Compliant"

# Reasons, stable CamelCase.
REASON_PLACED = "Placed"
REASON_NOTHING_WANTED = "NoReplicasWanted"
REASON_UNSCHEDULABLE = "Unschedulable"
REASON_POLICY_NOT_FOUND = "PolicyNotFound"
REASON_PRIORITY_CLASS_NOT_FOUND = "PriorityClassNotFound"
REASON_MEMBER_REJECTED = "MemberRejected"
REASON_PODS_PENDING = "PodsPending"
REASON_MODULE_UNREACHABLE = "ModuleUnreachable"
REASON_MOVE_BLOCKED = "MoveBlocked"
REASON_MIGRATING = "Migrating"
REASON_PROGRESSING = "Progressing"
REASON_AS_EXPECTED = "AsExpected"
REASON_READY = "ReplicasReady"
REASON_NOT_READY = "ReplicasNotReady"

# Why replicas stay on a module they should leave (status.heldReplicas[].reason).
HELD_NO_DESTINATION = "NoDestination"
HELD_WAITING_FOR_STEP = "WaitingForStep"
HELD_WAITING_FOR_BUDGET = "WaitingForBudget"
HELD_HANDOVER = "Handover"
HELD_WORDS = {
    HELD_NO_DESTINATION: "no other module can take them",
    HELD_WAITING_FOR_STEP: "waiting for the previous step to be Ready",
    HELD_WAITING_FOR_BUDGET: "waiting for the disruption budget",
    HELD_HANDOVER: "serving until their replacements are Ready",
}

#: Longest status/Event message: enough to name modules and reasons, bounded for etcd.
MAX_MESSAGE = 1024
MAX_EXPLAINED_MODULES = 64


def _clip(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------------------ inputs
@dataclass(frozen=True, slots=True)
class ModuleUse:
    """How one module may be used this cycle.

    `usable`: replicas there may stay and keep serving (Ready, or NotReady for less than
    tolerationSeconds). `placeable`: it takes new replicas (usable, Ready, schedulable, not
    draining). `draining`: every replica should leave (voluntary, make-before-break).
    """

    name: str
    usable: bool
    placeable: bool
    draining: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class MemberState:
    """This deployment's member objects on one module, as the module's cluster shows them."""

    module: str
    #: The cluster's caches are complete and current, and it answers: we may act on it.
    known: bool
    exists: bool = False
    replicas: int = 0
    ready: int = 0
    #: Creation times of pods not Ready yet (oldest first).
    waiting_since: tuple[datetime, ...] = ()
    unschedulable: str = ""
    #: The rendered template's digest the member object carries.
    spec_hash: str = ""
    #: Why the member is not known (unreachable, re-listing after an outage...).
    unknown_reason: str = ""

    def stuck(self, now: datetime, timeout: float) -> int:
        """Pods waiting longer than `timeout` seconds."""
        return sum(1 for t in self.waiting_since if (now - t).total_seconds() > timeout)


@dataclass(frozen=True, slots=True)
class ApplyError:
    """The last failed write to a module for this deployment (from the executor)."""

    reason: str
    message: str
    permanent: bool
    generation: int | None
    at: datetime


#: Shortest time a module takes no more replicas of a deployment whose pods stayed Pending
#: there; each repeat doubles it, up to BLOCK_MAX_S (kube-scheduler's backoff, coarser).
BLOCK_MIN_S = 300.0
BLOCK_MAX_S = 3600.0


@dataclass(frozen=True, slots=True)
class PendingBlock:
    """Replicas of a deployment that stayed Pending on a module past pendingTimeout: the module
    takes none of its replicas (nor the rebalancer's) until `until`. `strikes` counts how often
    it happened; each strike doubles the wait."""

    since: datetime
    replicas: int
    reason: str
    until: datetime | None = None
    strikes: int = 1
    #: Creation times of the stuck pods whose replicas were taken off the placement already:
    #: until the member's ReplicaSet deletes them they still wait, and must not be taken off
    #: a second time (that would take a replica that serves, or delete the member).
    taken: tuple[datetime, ...] = ()


@dataclass(frozen=True, slots=True)
class Preempted:
    """Replicas of this deployment a higher-priority one displaces from a module, now."""

    replicas: int
    by: str
    priority: int


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything the planner needs about one deployment, already read."""

    infd: InferenceDeployment
    #: Replicas wanted per region (the engine's sizing), "" for no demand regions.
    wanted: Mapping[str, int]
    #: The placement decided last (status.placements), as cells and per-module pools.
    current: Cells
    modules: Mapping[str, ModuleUse]
    members: Mapping[str, MemberState]
    #: The engine's answer for this cycle (keep what may stay, repair the rest).
    decision: Decision
    #: (region, module) cells a bound Enforce sovereignty rule forbids, with the reason.
    forbidden: Mapping[tuple[str, str], str] = field(default_factory=dict)
    missing_policies: tuple[str, ...] = ()
    #: The rebalancer's fleet-wide target, when this cycle may take a step towards it.
    rebalance_target: Decision | None = None
    apply_errors: Mapping[str, ApplyError] = field(default_factory=dict)
    #: Modules the deployment may not grow on (its pods stayed Pending there), and why.
    pending_blocks: Mapping[str, PendingBlock] = field(default_factory=dict)
    #: Per module: the digest of what would be applied (template and Service, not replicas).
    rendered_hash: Mapping[str, str] = field(default_factory=dict)
    audit: tuple[str, ...] = ()
    #: module -> replicas displaced there by a higher-priority deployment this cycle
    preempted: Mapping[str, Preempted] = field(default_factory=dict)
    #: spec.priorityClassName names no PriorityClass: placement pauses like a missing policy
    missing_priority_class: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    budget: int = 2
    pending_timeout: float = 120.0
    toleration_seconds: float = 60.0


# ------------------------------------------------------------------------------------ output
@dataclass(frozen=True, slots=True)
class MemberAction:
    """One change to one module's member objects.

    kind: "apply" (render and server-side apply with `replicas`), "scale" (only
    spec.replicas), "delete" (Deployment and Service). `why` is for logs and Events.
    """

    kind: str
    module: str
    replicas: int = 0
    why: str = ""


@dataclass(frozen=True, slots=True)
class EventSpec:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class StepResult:
    """The next placement and how it differs from the current one."""

    cells: Cells
    added: tuple[tuple[str, str, int], ...] = ()
    #: (region, module, n, why): removed at once (unusable, forbidden, fewer needed).
    removed: tuple[tuple[str, str, int, str], ...] = ()
    #: (region, from, to, n): voluntary moves in this step.
    moves: tuple[tuple[str, str, str, int], ...] = ()
    #: (region, module, n, why): replicas that should leave but stay for now.
    held: tuple[tuple[str, str, int, str], ...] = ()


@dataclass(frozen=True)
class Plan:
    """What the loop must do for one deployment."""

    status: InferenceDeploymentStatus
    actions: tuple[MemberAction, ...]
    events: tuple[EventSpec, ...]
    step: StepResult
    #: Modules the deployment may not grow on (pending backoff): the loop keeps them.
    block: Mapping[str, PendingBlock] = field(default_factory=dict)
    #: The rebalance target was acted on (the loop records the plan as adopted).
    rebalanced: bool = False
    #: Settled: placement fully Ready, nothing held, nothing to do.
    settled: bool = False


# ------------------------------------------------------------------------------------ cells
def cells_of(placements: Sequence[ModulePlacement], *, has_demand: bool) -> Cells:
    """status.placements as cells."""
    out: Cells = {}
    for p in placements:
        if p.replicas <= 0:
            continue
        if has_demand and p.regions:
            for r, k in p.regions.items():
                if k > 0:
                    out[(r, p.module)] = out.get((r, p.module), 0) + k
        else:
            out[("", p.module)] = out.get(("", p.module), 0) + p.replicas
    return out


def decision_cells(decision: Decision, *, has_demand: bool) -> Cells:
    out: Cells = {}
    for a in decision.assignments:
        if has_demand and a.regions:
            for r, k in a.regions.items():
                if k > 0:
                    out[(r, a.module)] = out.get((r, a.module), 0) + k
        elif a.replicas > 0:
            out[("", a.module)] = out.get(("", a.module), 0) + a.replicas
    return out


def per_module(cells: Mapping[tuple[str, str], int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for (_, m), k in cells.items():
        if k > 0:
            out[m] = out.get(m, 0) + k
    return out


def as_current(
    cells: Mapping[tuple[str, str], int], pools: Mapping[str, Mapping[str, int]] | None = None
) -> tuple[CurrentAssignment, ...]:
    """Cells as the engine's running placement (with the member-reported pools per module)."""
    by_module: dict[str, dict[str, int]] = {}
    for (r, m), k in sorted(cells.items()):
        if k > 0:
            by_module.setdefault(m, {})[r] = by_module.get(m, {}).get(r, 0) + k
    return tuple(
        CurrentAssignment(
            m,
            sum(rs.values()),
            {r: k for r, k in rs.items() if r},
            dict((pools or {}).get(m, {})),
        )
        for m, rs in sorted(by_module.items())
    )


def block_seconds(timeout: float, strikes: int) -> float:
    return float(min(BLOCK_MAX_S, max(BLOCK_MIN_S, 4 * timeout) * 2.0 ** max(0, strikes - 1)))


def pending_blocks(
    inputs: Inputs, stuck: Mapping[str, int], now: datetime, timeout: float
) -> dict[str, PendingBlock]:
    """Blocks in force, new ones for modules stuck now, and a longer one for a repeat.

    An expired block is remembered (it holds the strike count) for as long again, so a module
    that keeps refusing a deployment's pods is avoided for longer each time.
    """
    out: dict[str, PendingBlock] = {}
    for m, b in inputs.pending_blocks.items():
        until = b.until or now
        if (now - until).total_seconds() < block_seconds(timeout, b.strikes):
            member = inputs.members.get(m)
            # forget taken pods once gone (a member we cannot see keeps its record)
            seen = member is not None and member.known
            kept = _common(b.taken, member.waiting_since) if seen and member else b.taken
            out[m] = dataclasses.replace(b, taken=kept) if kept != b.taken else b
    for module, n in stuck.items():
        member = inputs.members.get(module)
        why = (member.unschedulable if member else "") or ""
        old = out.get(module)
        newly = _untaken(member, old, now, timeout)[:n] if member else ()
        taken = tuple(sorted((old.taken if old else ()) + newly))
        if old is not None and old.until is not None and now < old.until:
            out[module] = PendingBlock(
                old.since, len(taken) or n, why or old.reason, old.until, old.strikes, taken
            )
            continue
        strikes = (old.strikes + 1) if old is not None else 1
        until = now + timedelta(seconds=block_seconds(timeout, strikes))
        out[module] = PendingBlock(
            now, n, why or (old.reason if old else ""), until, strikes, taken
        )
    return out


def _common(a: Sequence[datetime], b: Sequence[datetime]) -> tuple[datetime, ...]:
    """The times in both (as multisets), sorted."""
    return tuple(sorted((Counter(a) & Counter(b)).elements()))


def _untaken(
    member: MemberState, block: PendingBlock | None, now: datetime, timeout: float
) -> tuple[datetime, ...]:
    """Creation times of the member's pods waiting longer than `timeout` whose replicas were
    not taken off the placement yet (oldest first).

    Taken off already: the pods the block remembers, and as many as the member runs above
    what its Deployment asks for. Those are on their way out (a ReplicaSet deletes pending
    pods first), and the count survives what memory does not: an operator restarted after
    taking a stuck replica off, before the member deleted its pod, would otherwise take it
    off again, and the replica that goes then is one that serves."""
    waiting = Counter(member.waiting_since)
    stuck = Counter(t for t in member.waiting_since if (now - t).total_seconds() > timeout)
    remembered = Counter(block.taken) & waiting if block is not None else Counter()
    stuck -= remembered
    surplus = member.ready + len(member.waiting_since) - member.replicas if member.exists else 0
    out = sorted(stuck.elements())
    leaving = max(0, surplus - sum(remembered.values()))
    return tuple(out[: max(0, len(out) - leaving)])


def blocked_now(blocks: Mapping[str, PendingBlock], now: datetime) -> set[str]:
    """Modules whose block is in force (not merely remembered for its strikes)."""
    return {m for m, b in blocks.items() if b.until is not None and now < b.until}


def without_preempted(
    current: Mapping[tuple[str, str], int], preempted: Mapping[str, Preempted]
) -> tuple[Cells, list[tuple[str, str, int, str]]]:
    """The current cells minus replicas displaced by preemption, and the removals (region,
    module, n, why). Preemption removes at once, as kube-scheduler evicts lower priorities."""
    out = dict(current)
    removed: list[tuple[str, str, int, str]] = []
    for module, p in sorted(preempted.items()):
        left = p.replicas
        for key in sorted((k for k in out if k[1] == module), key=lambda k: (-out[k], k)):
            if left <= 0:
                break
            d = min(left, out[key])
            out[key] -= d
            left -= d
            removed.append((key[0], module, d, f"preempted by {p.by} (priority {p.priority})"))
            if out[key] == 0:
                del out[key]
    return out, removed


def without_stuck(
    current: Cells,
    members: Mapping[str, MemberState],
    now: datetime,
    timeout: float,
    blocks: Mapping[str, PendingBlock] | None = None,
) -> tuple[Cells, dict[str, int]]:
    """The current cells minus replicas whose pods wait longer than `timeout`; and per module
    how many were taken off (they serve nothing, so re-placing them disrupts nothing).

    `blocks` (the last cycle's pending blocks) say which stuck pods were taken off already: the
    current placement no longer counts them, though they wait until the member deletes them."""
    out = dict(current)
    taken: dict[str, int] = {}
    for module, member in members.items():
        if not member.known:
            continue
        stuck = len(_untaken(member, (blocks or {}).get(module), now, timeout))
        if stuck <= 0:
            continue
        for key in sorted((k for k in out if k[1] == module), key=lambda k: (-out[k], k)):
            if stuck <= 0:
                break
            d = min(stuck, out[key])
            out[key] -= d
            stuck -= d
            taken[module] = taken.get(module, 0) + d
            if out[key] == 0:
                del out[key]
    return out, taken


# ------------------------------------------------------------------------------------ step
@dataclass(slots=True)
class _Slot:
    n: int
    module: str


def step(
    current: Mapping[tuple[str, str], int],
    target: Mapping[tuple[str, str], int],
    wanted: Mapping[str, int],
    involuntary: Mapping[tuple[str, str], str],
    *,
    budget: int,
    moves_allowed: bool,
    idle: Mapping[str, int] | None = None,
) -> StepResult:
    """The next placement on the way from `current` to `target`.

    Per region: cells in `involuntary` go at once; replicas above what is wanted go at once
    (from the cells the target no longer wants, largest surplus first); replicas the target
    adds beyond what runs are added at once; replicas that serve nothing yet (`idle`: module
    -> replicas there not Ready) move at once, since moving them disrupts nothing; the rest
    of the difference is moves, at most `budget` in all and only when `moves_allowed` (the
    previous step is Ready). A surplus the target has no destination for stays where it is.
    Deterministic: ties go by module name.
    """
    idle_left = {m: n for m, n in (idle or {}).items() if n > 0}
    cells: Cells = {k: v for k, v in current.items() if v > 0}
    added: list[tuple[str, str, int]] = []
    removed: list[tuple[str, str, int, str]] = []
    moves: list[tuple[str, str, str, int]] = []
    held: list[tuple[str, str, int, str]] = []
    for key, why in sorted(involuntary.items()):
        n = cells.pop(key, 0)
        if n:
            removed.append((key[0], key[1], n, why))
    left = max(0, budget)
    regions = sorted({r for r, _ in cells} | {r for r, _ in target} | set(wanted))
    for r in regions:
        cur = {m: k for (rr, m), k in cells.items() if rr == r}
        tgt = {m: k for (rr, m), k in target.items() if rr == r and k > 0}
        surplus = sorted(
            ((cur[m] - tgt.get(m, 0), m) for m in cur if cur[m] > tgt.get(m, 0)),
            key=lambda x: (-x[0], x[1]),
        )
        deficit = sorted(
            ((tgt[m] - cur.get(m, 0), m) for m in tgt if tgt[m] > cur.get(m, 0)),
            key=lambda x: (-x[0], x[1]),
        )
        have, want, aim = sum(cur.values()), int(wanted.get(r, 0)), sum(tgt.values())
        sur = [_Slot(n, m) for n, m in surplus]
        dfc = [_Slot(n, m) for n, m in deficit]
        # 1. fewer replicas wanted: the surplus goes now (nothing below what is wanted)
        down = max(0, have - want)
        for item in sur:
            if down <= 0:
                break
            k = min(down, item.n)
            cells[(r, item.module)] -= k
            removed.append((r, item.module, k, "fewer replicas needed"))
            item.n -= k
            down -= k
            have -= k
        # 2. more replicas than run: added now
        up = max(0, aim - have)
        for item in dfc:
            if up <= 0:
                break
            k = min(up, item.n)
            cells[(r, item.module)] = cells.get((r, item.module), 0) + k
            added.append((r, item.module, k))
            item.n -= k
            up -= k
        # 3. replicas not serving yet move at once (a replacement for nothing needs no wait)
        sur = [x for x in sur if x.n > 0]
        dfc = [x for x in dfc if x.n > 0]
        di = 0
        for src in sur:
            free = min(src.n, idle_left.get(src.module, 0))
            while free > 0 and di < len(dfc):
                dst = dfc[di]
                k = min(free, dst.n)
                cells[(r, src.module)] -= k
                cells[(r, dst.module)] = cells.get((r, dst.module), 0) + k
                moves.append((r, src.module, dst.module, k))
                idle_left[src.module] -= k
                free -= k
                src.n -= k
                dst.n -= k
                if dst.n == 0:
                    di += 1
        # 4. the rest is moves of serving replicas: budgeted, one step at a time
        si = di = 0
        sur = [x for x in sur if x.n > 0]
        dfc = [x for x in dfc if x.n > 0]
        while moves_allowed and left > 0 and si < len(sur) and di < len(dfc):
            src, dst = sur[si], dfc[di]
            k = min(src.n, dst.n, left)
            cells[(r, src.module)] -= k
            cells[(r, dst.module)] = cells.get((r, dst.module), 0) + k
            moves.append((r, src.module, dst.module, k))
            left -= k
            src.n -= k
            dst.n -= k
            if src.n == 0:
                si += 1
            if dst.n == 0:
                di += 1
        pending_dest = sum(x.n for x in dfc[di:])
        for item in sur[si:]:
            if item.n <= 0:
                continue
            if pending_dest <= 0:
                why = HELD_NO_DESTINATION
            elif not moves_allowed:
                why = HELD_WAITING_FOR_STEP
            else:
                why = HELD_WAITING_FOR_BUDGET
            held.append((r, item.module, item.n, why))
            pending_dest -= item.n
    return StepResult(
        cells={k: v for k, v in sorted(cells.items()) if v > 0},
        added=tuple(added),
        removed=tuple(removed),
        moves=tuple(moves),
        held=tuple(held),
    )


def next_deadline(
    members: Mapping[str, MemberState],
    blocks: Mapping[str, PendingBlock],
    now: datetime,
    timeout: float,
) -> float | None:
    """Seconds until a time-based rule may change this deployment's plan without any event:
    a waiting pod reaching `timeout` (pendingTimeout), or a pending block running out. None
    when no such clock runs (then only events and the periodic resync replan it)."""
    out: float | None = None
    for m in members.values():
        for since in m.waiting_since:
            left = timeout - (now - since).total_seconds()
            if left > 0:
                out = left if out is None else min(out, left)
    for b in blocks.values():
        if b.until is not None and b.until > now:
            left = (b.until - now).total_seconds()
            out = left if out is None else min(out, left)
    return out


def idle_replicas(current: Cells, members: Mapping[str, MemberState]) -> dict[str, int]:
    """Module -> replicas of the current placement there that serve nothing (not Ready), on
    clusters we see; an unknown cluster's replicas count as serving."""
    out: dict[str, int] = {}
    for module, n in per_module(current).items():
        m = members.get(module)
        if m is None or not m.known:
            continue
        idle = n - min(n, m.ready)
        if idle > 0:
            out[module] = idle
    return out


# ------------------------------------------------------------------------------------ plan
def settled(current: Mapping[tuple[str, str], int], members: Mapping[str, MemberState]) -> bool:
    """Every replica of the current placement is Ready where it should be (the previous step
    is done; old replicas still held for it are released by this cycle's member actions)."""
    for module, n in per_module(current).items():
        m = members.get(module)
        if m is None or not m.known or m.ready < n:
            return False
    return True


def _involuntary(
    current: Mapping[tuple[str, str], int],
    modules: Mapping[str, ModuleUse],
    forbidden: Mapping[tuple[str, str], str],
) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for (r, m), k in current.items():
        if k <= 0:
            continue
        use = modules.get(m)
        if use is None:
            out[(r, m)] = f"module {m} is gone"
        elif not use.usable:
            out[(r, m)] = f"module {m} is unusable: {use.reason or 'not ready'}"
        elif (r, m) in forbidden:
            out[(r, m)] = f"an Enforce policy forbids {m}: {forbidden[(r, m)]}"
    return out


def member_actions(
    next_cells: Mapping[tuple[str, str], int],
    inputs: Inputs,
    now: datetime,
    dropped_forbidden: set[str],
) -> tuple[list[MemberAction], bool, dict[str, int]]:
    """Member changes for the next placement, with make-before-break holds.

    Returns (actions, handover_complete, {module: replicas held there for the handover}).
    """
    wanted = per_module(next_cells)
    members = inputs.members
    complete = all(
        (m := members.get(module)) is not None and m.known and m.ready >= n
        for module, n in wanted.items()
    )
    actions: list[MemberAction] = []
    held: dict[str, int] = {}
    for module in sorted(set(wanted) | {m for m, s in members.items() if s.exists}):
        member = members.get(module) or MemberState(module=module, known=False)
        use = inputs.modules.get(module)
        # A module the fleet calls unusable (NotReady past tolerationSeconds, or gone) whose
        # member we see again with Ready replicas is a cluster that came back before its
        # heartbeat did: those replicas serve, so they stay until their replacements are Ready.
        may_hold = (
            ((use is not None and use.usable) or member.ready > 0)
            and module not in dropped_forbidden
            and not complete
            and member.known
        )
        if not member.known:
            continue  # rule 4: never act on a view we do not have
        err = inputs.apply_errors.get(module)
        retry_later = (
            err is not None and err.permanent and err.generation == inputs.infd.metadata.generation
        )
        n = wanted.get(module, 0)
        if n > 0:
            target = n
            if may_hold and member.exists and member.replicas > n:
                target = max(n, min(member.replicas, member.ready))
                if target > n:
                    held[module] = target - n
            digest = inputs.rendered_hash.get(module, "")
            if not member.exists or (digest and member.spec_hash != digest):
                if not retry_later:
                    actions.append(MemberAction("apply", module, target, "placement"))
            elif member.replicas != target:
                actions.append(MemberAction("scale", module, target, "placement"))
        else:
            if may_hold and member.ready > 0:
                keep = min(member.replicas, member.ready)
                held[module] = keep
                if member.replicas != keep:
                    actions.append(MemberAction("scale", module, keep, "handover"))
                continue
            actions.append(
                MemberAction(
                    "delete",
                    module,
                    0,
                    "forbidden"
                    if module in dropped_forbidden
                    else "unusable"
                    if use is None or not use.usable
                    else "no longer placed",
                )
            )
    return actions, complete, held


def _cond(type_: str, ok: bool, reason: str, message: str, generation: int | None) -> Condition:
    return Condition(
        type=type_,
        status=ConditionStatus.TRUE if ok else ConditionStatus.FALSE,
        reason=reason,
        message=_clip(message),
        observed_generation=generation,
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _summary(cells: Mapping[tuple[str, str], int]) -> str:
    return ", ".join(f"{m} ({k})" for m, k in sorted(per_module(cells).items()))


def _explanation(decision: Decision) -> dict[str, str]:
    chosen = [a.module for a in decision.assignments]
    rest = sorted(m for m in decision.explanation if m not in chosen)
    keep = (chosen + rest)[:MAX_EXPLAINED_MODULES]
    return {m: decision.explanation[m] for m in keep if m in decision.explanation}


def _pools_for(
    module: str,
    replicas: int,
    gpus_per_replica: int,
    decision: Decision,
    observed: Mapping[str, Mapping[str, int]],
) -> dict[str, int] | None:
    """GPU model -> GPUs the module's replicas hold: observed pods first, the engine's pools
    for the rest."""
    have = dict(observed.get(module, {}))
    engine = next((dict(a.gpus) for a in decision.assignments if a.module == module), {})
    need = replicas * gpus_per_replica - sum(have.values())
    for model, g in sorted(engine.items(), key=lambda kv: -kv[1]):
        if need <= 0:
            break
        extra = max(0, min(need, g - have.get(model, 0)))
        if extra:
            have[model] = have.get(model, 0) + extra
            need -= extra
    if need > 0 and have:
        first = sorted(have)[0]
        have[first] += need
    return have or None


def plan(
    inputs: Inputs,
    now: datetime,
    settings: Settings,
    observed_pools: Mapping[str, Mapping[str, int]] | None = None,
) -> Plan:
    """Plan one deployment: next placement, member actions, status, Events (pure)."""
    infd = inputs.infd
    gen = infd.metadata.generation
    has_demand = bool(infd.spec.demand.regions)
    decision = inputs.decision
    wanted_total = sum(inputs.wanted.values())
    events: list[EventSpec] = []
    after_preemption, preempted_removals = without_preempted(inputs.current, inputs.preempted)
    current, stuck = without_stuck(
        after_preemption, inputs.members, now, settings.pending_timeout, inputs.pending_blocks
    )
    block = pending_blocks(inputs, stuck, now, settings.pending_timeout)

    if inputs.missing_policies or inputs.missing_priority_class:
        # placement is paused: keep what runs, place nothing new, never remove
        step_result = StepResult(cells=dict(current), removed=tuple(preempted_removals))
    else:
        involuntary = _involuntary(current, inputs.modules, inputs.forbidden)
        is_settled = settled(inputs.current, inputs.members)
        target = decision_cells(decision, has_demand=has_demand)
        if (
            inputs.rebalance_target is not None
            and is_settled
            and not involuntary
            and target == {k: v for k, v in current.items() if v > 0}
        ):
            fleet_target = decision_cells(inputs.rebalance_target, has_demand=has_demand)
            # the fleet plan says where, never how many: a plan made when the fleet had more
            # room must not add replicas the engine cannot place now
            if _region_totals(fleet_target) == _region_totals(target):
                target = fleet_target
        step_result = step(
            current,
            target,
            inputs.wanted,
            involuntary,
            budget=settings.budget,
            moves_allowed=is_settled,
            idle=idle_replicas(current, inputs.members),
        )
        if preempted_removals:
            step_result = dataclasses.replace(
                step_result, removed=tuple(preempted_removals) + step_result.removed
            )

    next_cells = step_result.cells
    dropped_forbidden = {
        m
        for _, m, _, why in step_result.removed
        if why.startswith(("an Enforce policy", "preempted by"))
    }
    actions, complete, held_modules = member_actions(next_cells, inputs, now, dropped_forbidden)

    # ------------------------------------------------------------------ status
    members = inputs.members
    placed_by_module = per_module(next_cells)
    regions_by_module: dict[str, dict[str, int]] = {}
    for (r, m), k in next_cells.items():
        if r:
            regions_by_module.setdefault(m, {})[r] = k
    g = infd.spec.resources.gpus_per_replica
    placements = [
        ModulePlacement(
            module=m,
            replicas=k,
            ready_replicas=min(k, members[m].ready) if m in members and members[m].known else 0,
            regions=regions_by_module.get(m, {}),
            gpus=_pools_for(m, k, g, decision, observed_pools or {}),
        )
        for m, k in sorted(placed_by_module.items())
    ]
    serving = sum(s.ready for s in members.values() if s.known and s.exists)
    placed_total = sum(placed_by_module.values())
    unplaced = max(0, wanted_total - placed_total)
    routing: list[RegionRouting] = []
    for region in infd.spec.demand.regions:
        split = [(p.module, p.regions.get(region.name, 0)) for p in placements]
        total = sum(k for _, k in split)
        if total:
            routing.append(
                RegionRouting(
                    region=region.name,
                    modules=[
                        RouteTarget(module=m, weight=round(k / total, 4)) for m, k in split if k
                    ],
                )
            )

    conditions = list(infd.status.conditions) if infd.status else []
    paused = _paused(inputs)
    # Placed
    if paused is not None:
        placed_cond = _cond(PLACED, False, paused[0], paused[1], gen)
    elif wanted_total == 0:
        placed_cond = _cond(PLACED, True, REASON_NOTHING_WANTED, "0 replicas wanted", gen)
    elif unplaced == 0:
        placed_cond = _cond(
            PLACED,
            True,
            REASON_PLACED,
            f"{placed_total} replicas on {_count(len(placements), 'module')}: "
            f"{_summary(next_cells)}",
            gen,
        )
    else:
        placed_cond = _cond(
            PLACED,
            False,
            REASON_UNSCHEDULABLE,
            decision.message or f"{unplaced}/{wanted_total} replicas unplaced",
            gen,
        )
    conditions = set_condition(conditions, placed_cond, now=now)

    # Ready (kstatus): serving replicas >= wanted
    ready_ok = serving >= wanted_total  # zero wanted and zero placed is Ready
    conditions = set_condition(
        conditions,
        _cond(
            READY,
            ready_ok,
            REASON_READY if ready_ok else REASON_NOT_READY,
            f"{serving}/{wanted_total} replicas ready",
            gen,
        ),
        now=now,
    )
    conditions = set_condition(
        conditions,
        _cond(
            COMPLIANT,
            not inputs.audit,
            "PoliciesSatisfied" if not inputs.audit else "AuditFindings",
            "every bound policy is satisfied" if not inputs.audit else "; ".join(inputs.audit),
            gen,
        ),
        now=now,
    )

    # Degraded: what is wrong, named after its cause, with the member's own words
    problems: list[tuple[str, str]] = []
    for module, err in sorted(inputs.apply_errors.items()):
        if err.generation == gen or not err.permanent:
            problems.append((err.reason, f"{module}: {err.message}"))
    recovering = serving < wanted_total
    for module, b in sorted(block.items()):
        if module not in stuck and (not recovering or module not in blocked_now(block, now)):
            continue  # replaced and serving again: history only (the Event says it)
        problems.append(
            (
                REASON_PODS_PENDING,
                f"{b.replicas} replicas on {module} stayed Pending longer than "
                f"{settings.pending_timeout:.0f}s ({b.reason or 'not scheduled'}); "
                "placing them elsewhere",
            )
        )
    down = sorted(m for m in placed_by_module if m in members and not members[m].known) + sorted(
        m for m in placed_by_module if m not in members and m in inputs.apply_errors
    )
    for module in dict.fromkeys(down):
        member = members.get(module)
        why = member.unknown_reason if member else ""
        problems.append(
            (REASON_MODULE_UNREACHABLE, f"{module} not observed{': ' + why if why else ''}")
        )
    if unplaced and paused is None:
        problems.append((REASON_UNSCHEDULABLE, decision.message or f"{unplaced} replicas unplaced"))
    stuck_moves = [h for h in step_result.held if h[3] == HELD_NO_DESTINATION]
    if stuck_moves:
        desc = ", ".join(f"{n} serving {r or 'all'} on {m}" for r, m, n, _ in stuck_moves)
        problems.append(
            (
                REASON_MOVE_BLOCKED,
                f"replicas should leave but no other module can take them: {desc}",
            )
        )
    if paused is not None:
        problems.append(paused)
    degraded_reason = problems[0][0] if problems else REASON_AS_EXPECTED
    conditions = set_condition(
        conditions,
        _cond(
            DEGRADED,
            bool(problems),
            degraded_reason,
            "; ".join(p for _, p in problems) or "all replicas placed on reachable modules",
            gen,
        ),
        now=now,
    )

    # Stalled (kstatus): cannot progress without a change to the spec, a policy or the fleet
    stalled_reasons = [
        (r, m)
        for r, m in problems
        if r
        in (
            REASON_MEMBER_REJECTED,
            REASON_POLICY_NOT_FOUND,
            REASON_PRIORITY_CLASS_NOT_FOUND,
            REASON_UNSCHEDULABLE,
        )
        or (r == "MemberForbidden")
    ]
    conditions = set_condition(
        conditions,
        _cond(
            STALLED,
            bool(stalled_reasons),
            stalled_reasons[0][0] if stalled_reasons else REASON_AS_EXPECTED,
            "; ".join(m for _, m in stalled_reasons) or "progressing or done",
            gen,
        ),
        now=now,
    )

    # Reconciling (kstatus): work in progress
    in_flight = bool(actions) or bool(held_modules) or not complete or bool(step_result.held)
    reason = REASON_MIGRATING if held_modules or step_result.moves else REASON_PROGRESSING
    message_parts = []
    if held_modules:
        message_parts.append(
            "keeping replicas on "
            + ", ".join(sorted(held_modules))
            + " until their replacements are Ready"
        )
    waiting = [h for h in step_result.held if h[3] != HELD_NO_DESTINATION]
    if waiting:
        why = HELD_WORDS.get(waiting[0][3], waiting[0][3])
        message_parts.append(f"{sum(h[2] for h in waiting)} replicas to move ({why})")
    if actions:
        message_parts.append(f"{len(actions)} member changes")
    if not complete and not message_parts:
        message_parts.append(f"{serving}/{wanted_total} replicas ready")
    conditions = set_condition(
        conditions,
        _cond(
            RECONCILING,
            in_flight,
            reason if in_flight else REASON_AS_EXPECTED,
            "; ".join(message_parts) or "up to date",
            gen,
        ),
        now=now,
    )

    # ------------------------------------------------------------------ events
    before = per_module(inputs.current)
    after = placed_by_module
    if before != after:
        summary = _summary(next_cells)
        if step_result.moves:
            moves = "; ".join(
                f"{n} serving {r or 'all'}: {a} -> {b}" for r, a, b, n in step_result.moves
            )
            events.append(
                EventSpec(
                    "Normal",
                    "Rebalanced" if rebalanced_flag(inputs, step_result) else "Rescheduled",
                    f"moved {sum(n for *_, n in step_result.moves)} replicas "
                    f"(budget {settings.budget}): {moves}; now {summary}"
                    + (f" ({decision.stability})" if decision.stability else ""),
                )
            )
        elif not before:
            events.append(
                EventSpec(
                    "Normal", "Placed", f"{placed_total}/{wanted_total} replicas on {summary}"
                )
            )
        elif set(before) != set(after):
            events.append(
                EventSpec(
                    "Normal",
                    "Rescheduled",
                    f"{placed_total}/{wanted_total} replicas on {summary}"
                    + (f" ({decision.stability})" if decision.stability else ""),
                )
            )
        else:
            events.append(
                EventSpec(
                    "Normal", "Scaled", f"{placed_total}/{wanted_total} replicas on {summary}"
                )
            )
    for r, m, n, why in step_result.removed:
        if why.startswith("an Enforce policy"):
            events.append(
                EventSpec(
                    "Warning",
                    "ComplianceRemoval",
                    f"removed {n} replicas serving {r or 'all'} from {m} at once: {why} "
                    "(compliance wins over make-before-break)",
                )
            )
    for kind, detail in problems:
        if kind in (REASON_MEMBER_REJECTED, REASON_PODS_PENDING, REASON_MOVE_BLOCKED):
            events.append(EventSpec("Warning", kind, detail))
    if unplaced and paused is None:
        events.append(EventSpec("Warning", "PlacementFailed", _clip(placed_cond.message)))
    if paused is not None:
        events.append(EventSpec("Warning", paused[0], paused[1]))
    for r, m, n, why in step_result.removed:
        if why.startswith("preempted by"):
            events.append(
                EventSpec(
                    "Warning",
                    "Preempted",
                    f"{n} replicas serving {r or 'all'} removed from {m}: {why}",
                )
            )
    for pre in decision.preemptions:
        events.append(
            EventSpec(
                "Normal",
                "Preempting",
                f"displaced {pre.replicas} replicas of {pre.deployment} (priority "
                f"{pre.priority}) on {pre.module}",
            )
        )
    for a in actions:
        if a.kind == "delete":
            events.append(
                EventSpec(
                    "Normal",
                    "MemberRemoved",
                    f"removed member Deployment and Service from module {a.module} ({a.why})",
                )
            )

    held_status = [
        HeldReplicas(module=m, replicas=n, region=r or None, reason=why)
        for r, m, n, why in step_result.held
    ] + [
        HeldReplicas(module=m, replicas=n, reason=HELD_HANDOVER)
        for m, n in sorted(held_modules.items())
    ]
    previous = infd.status
    status = InferenceDeploymentStatus(
        observed_generation=gen,
        conditions=conditions,
        replicas=wanted_total,
        ready_replicas=serving,
        placements=placements,
        routing=routing,
        unsatisfied=Unsatisfied(replicas=unplaced, reason=_clip(decision.message))
        if unplaced and paused is None
        else None,
        last_rebalance_time=now
        if step_result.moves
        else (previous.last_rebalance_time if previous else None),
        last_moves=[f"{n} serving {r or 'all'}: {a} -> {b}" for r, a, b, n in step_result.moves]
        if step_result.moves
        else (previous.last_moves if previous else None),
        held_replicas=held_status or None,
        cost=round(decision.cost, 4),
        explanation=_explanation(decision),
        observed_demand=previous.observed_demand if previous else None,
        demand_updated_at=previous.demand_updated_at if previous else None,
    ).summarized()
    return Plan(
        status=status,
        actions=tuple(actions),
        events=tuple(events),
        step=step_result,
        block=block,
        rebalanced=rebalanced_flag(inputs, step_result),
        settled=not in_flight and not problems,
    )


def _paused(inputs: Inputs) -> tuple[str, str] | None:
    """Why placement is paused (running replicas stay, nothing new is placed), if it is."""
    if inputs.missing_policies:
        names = ", ".join(inputs.missing_policies)
        return (
            REASON_POLICY_NOT_FOUND,
            f"SovereigntyPolicy {names} named in spec.sovereigntyPolicies does not exist: "
            "placement is paused (running replicas stay, nothing new is placed)",
        )
    if inputs.missing_priority_class:
        return (
            REASON_PRIORITY_CLASS_NOT_FOUND,
            f"PriorityClass {inputs.missing_priority_class} named in spec.priorityClassName "
            "does not exist: placement is paused (running replicas stay, nothing new is placed)",
        )
    return None


def _region_totals(cells: Mapping[tuple[str, str], int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for (r, _), k in cells.items():
        if k > 0:
            out[r] = out.get(r, 0) + k
    return out


def rebalanced_flag(inputs: Inputs, result: StepResult) -> bool:
    """A step moved replicas towards the rebalancer's target (not a required move)."""
    if inputs.rebalance_target is None or not result.moves:
        return False
    has_demand = bool(inputs.infd.spec.demand.regions)
    target = decision_cells(inputs.rebalance_target, has_demand=has_demand)
    return all(target.get((r, b), 0) > 0 for r, _, b, _ in result.moves)

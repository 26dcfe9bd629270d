"""Live signals the placement engine consumes: demand per region, energy per module and
measured round-trip times.

Each source is a plain function over the API models (plus one HTTP request for Prometheus),
so controllers decide when to poll, and tests run them without a cluster. Carbon-intensity
feeds live in the `aifactory.signals.carbon` subpackage.
"""

from aifactory.signals.demand import (
    REASON_BAD_RESULT,
    REASON_EMPTY_SAMPLE,
    REASON_QUERY_FAILED,
    REASON_UNREACHABLE,
    DemandSample,
    DemandSignalError,
    apply_demand,
    fetch_demand,
    unmatched_regions,
)
from aifactory.signals.energy import (
    OPERATOR_SOURCES,
    SOURCE_SCHEDULE,
    SOURCE_SIGNAL,
    SOURCE_SPEC,
    EnergyReading,
    declared_energy,
    local_hour,
    operator_owns_energy,
    schedule_entry,
    scheduled_energy,
)
from aifactory.signals.rtt import (
    RttTableError,
    parse_rtt_csv,
    rtt_table_from_config_map,
    rtt_table_from_rows,
)

__all__ = [
    "OPERATOR_SOURCES",
    "REASON_BAD_RESULT",
    "REASON_EMPTY_SAMPLE",
    "REASON_QUERY_FAILED",
    "REASON_UNREACHABLE",
    "SOURCE_SCHEDULE",
    "SOURCE_SIGNAL",
    "SOURCE_SPEC",
    "DemandSample",
    "DemandSignalError",
    "EnergyReading",
    "RttTableError",
    "apply_demand",
    "declared_energy",
    "fetch_demand",
    "local_hour",
    "operator_owns_energy",
    "parse_rtt_csv",
    "rtt_table_from_config_map",
    "rtt_table_from_rows",
    "schedule_entry",
    "scheduled_energy",
    "unmatched_regions",
]

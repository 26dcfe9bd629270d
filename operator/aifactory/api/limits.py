"""Bounds on every number of the API, in one place, and why they are safe.

The apiserver stores whatever the CRD schema admits, and the operator then computes with it:
replica counts n_r = ceil(requestsPerSecond_r * (1 + headroom) / throughputPerReplica), GPUs
and watts per module, and the placement cost latencyWeight * RTT / L + carbonWeight *
carbonIntensity * pue / 500 per replica. An absurd magnitude that the schema let through
(`throughputPerReplica: 1e-300`) overflowed an int and failed every handler. These bounds are
generous for any real site or workload and keep all of that arithmetic small:

- replicas per region <= MAX_REQUESTS_PER_SECOND * (1 + MAX_HEADROOM) / MIN_THROUGHPUT_PER_REPLICA
  = 1e6 * 11 / 0.01 = 1.1e9, summed over at most 64 regions 7.04e10: exact in a float
  (< 2**53) and far inside int64, before the total is clamped to MAX_REPLICAS;
- one replica's cost <= MAX_WEIGHT * (RTT <= 321 ms) / MIN_LATENCY_MS + MAX_WEIGHT *
  MAX_CARBON_INTENSITY * MAX_PUE / 500 = 3.2e6 + 2e4; MAX_REPLICAS replicas of each of 10,000
  deployments stay below 1e15;
- a module's power, count * powerW * pue summed over 32 pools, <= 32 * 1e5 * 1e4 * 5 = 1.6e11 W.

`tests/api/test_limits.py` recomputes these worst cases from the constants.
"""

from __future__ import annotations

#: Demand of one region, requests per second.
MAX_REQUESTS_PER_SECOND = 1e6
#: Requests per second one replica serves: 0.01 (one request per 100 s) .. 1e6.
MIN_THROUGHPUT_PER_REPLICA = 0.01
MAX_THROUGHPUT_PER_REPLICA = 1e6
#: Spare capacity on top of demand: 0 .. 10 (1000%).
MAX_HEADROOM = 10.0
#: Replicas of one deployment (min, max, fixed); also the total when replicas.max is unset.
MAX_REPLICAS = 10_000
#: Grid carbon intensity, gCO2e/kWh: lignite is about 1,100, diesel generators about 900.
MAX_CARBON_INTENSITY = 2000.0
#: Latency SLO in milliseconds: 0.1 .. 10,000 (no route on Earth takes more than ~321 ms).
MIN_LATENCY_MS = 0.1
MAX_LATENCY_MS = 10_000.0
#: Placement cost weights (latencyWeight, carbonWeight): 0 .. 1000.
MAX_WEIGHT = 1000.0
#: Distinct modules a deployment must spread over.
MAX_MIN_MODULES = 1000
#: GPUs one replica (one Pod, so one node) uses.
MAX_GPUS_PER_REPLICA = 64
#: GPUs in one pool of one module.
MAX_GPUS_PER_POOL = 100_000
#: Memory of one GPU, GiB (the largest boards today have under 300).
MAX_GPU_MEMORY_GIB = 4096
#: Board power of one GPU, W (a GB200 superchip draws about 2,700).
MAX_GPU_POWER_W = 10_000.0
#: Facility power budget of one module, kW (1 GW).
MAX_POWER_BUDGET_KW = 1_000_000.0
#: Power usage effectiveness: 1 .. 5 (real sites are 1.03 .. 3).
MAX_PUE = 5.0
#: Container arguments of the model server: count and length of each.
MAX_ARGS = 256
MAX_ARG_LENGTH = 4096
#: Length of one environment variable's literal value.
MAX_ENV_VALUE_LENGTH = 32_768

__all__ = [
    "MAX_ARGS",
    "MAX_ARG_LENGTH",
    "MAX_CARBON_INTENSITY",
    "MAX_ENV_VALUE_LENGTH",
    "MAX_GPUS_PER_POOL",
    "MAX_GPUS_PER_REPLICA",
    "MAX_GPU_MEMORY_GIB",
    "MAX_GPU_POWER_W",
    "MAX_HEADROOM",
    "MAX_LATENCY_MS",
    "MAX_MIN_MODULES",
    "MAX_POWER_BUDGET_KW",
    "MAX_PUE",
    "MAX_REPLICAS",
    "MAX_REQUESTS_PER_SECOND",
    "MAX_THROUGHPUT_PER_REPLICA",
    "MAX_WEIGHT",
    "MIN_LATENCY_MS",
    "MIN_THROUGHPUT_PER_REPLICA",
]

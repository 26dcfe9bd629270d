"""Accountability: what the operator decided and why, in a form anyone can check.

* `chain`: PlacementRecords' canonical form, SHA-256 chain, Ed25519 signatures, verification,
  retention (pure);
* `records`: the body of a record from one placement change (pure);
* `keeper`: the thread that appends records to the hub's chain;
* `evidence`: OpenReports `Report`s of sovereignty compliance per deployment (pure);
* `reliability`: module readiness over a rolling window, outages, failovers (pure);
* `slo`: measured latency per (region, module) held to the SLO (pure but for one query);
* `summary`: where each data classification ran, by country, from the records (pure).

The operator wires them in `controllers/accountability.py`; `aifactoryctl audit` reads them.
"""

from aifactory.audit.chain import Finding, Signer, Verdict, record_hash, seal, verify_chain
from aifactory.audit.records import Change, RecordDraft, build, classify

__all__ = [
    "Change",
    "Finding",
    "RecordDraft",
    "Signer",
    "Verdict",
    "build",
    "classify",
    "record_hash",
    "seal",
    "verify_chain",
]

"""The hash chain of PlacementRecords: canonical form, digests, Ed25519 signatures, checks. Pure.

Every record's `hash` is the SHA-256 of its spec in canonical JSON (keys sorted, no spaces,
empty values dropped, integral numbers as integers) without `hash` and `signature`; its
`previousHash` is the `hash` of the record before it, so changing any record changes every hash
after it. With a signing key each `hash` is also signed (Ed25519), so a chain rewritten from the
changed record onwards still fails without the key.

The canonical form does not depend on how the apiserver writes numbers back (`2.0` comes back
as `2`) or whether it keeps empty lists, so a record read from the hub hashes like the one the
operator wrote.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

#: Fields of a record's spec that are not part of its hash.
UNHASHED = frozenset({"hash", "signature"})
#: Record names: the sequence, zero-padded, so names sort like the chain and two writers that
#: both think they append sequence N collide on the name (409) instead of forking the chain.
NAME_PREFIX = "rec-"
#: A record written this long after its decision is reported (it may have been re-created).
LATE_WRITE_SECONDS = 3600.0


def record_name(sequence: int) -> str:
    """`rec-000000000042` for sequence 42."""
    return f"{NAME_PREFIX}{sequence:012d}"


def normalize(value: Any) -> Any:
    """The canonical value: empty maps, lists and None dropped, integral floats as ints."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            n = normalize(v)
            if n is None or n == {} or n == []:
                continue
            out[str(k)] = n
        return out
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"a record cannot hold {value!r}")
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value
    raise TypeError(f"a record cannot hold a {type(value).__name__}")


def canonical(value: Any) -> bytes:
    """Canonical JSON bytes of `value`."""
    return json.dumps(
        normalize(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def digest(value: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of `value`."""
    return hashlib.sha256(canonical(value)).hexdigest()


def record_hash(spec: Mapping[str, Any]) -> str:
    """The hash a record's spec must carry: its canonical digest without hash and signature."""
    return digest({k: v for k, v in spec.items() if k not in UNHASHED})


# ------------------------------------------------------------------------------- signatures
def key_id(public: Ed25519PublicKey) -> str:
    """First 16 hex digits of the SHA-256 of the raw public key: names the key in records."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_private_key(data: bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8, as `openssl genpkey -algorithm ed25519` writes
    it) or a 32-byte seed, raw or base64. Raises ValueError."""
    if len(data) == 32:  # raw: any byte may be whitespace, so never strip it
        return Ed25519PrivateKey.from_private_bytes(data)
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        key = serialization.load_pem_private_key(text, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the signing key is not an Ed25519 key")
        return key
    seed = _raw32(text)
    return Ed25519PrivateKey.from_private_bytes(seed)


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo), a private key PEM (its public
    half), or 32 raw bytes, raw or base64. Raises ValueError."""
    if len(data) == 32:  # raw: any byte may be whitespace, so never strip it
        return Ed25519PublicKey.from_public_bytes(data)
    text = data.strip()
    if text.startswith(b"-----BEGIN") and b"PRIVATE" in text.split(b"\n", 1)[0]:
        return load_private_key(text).public_key()
    if text.startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(text)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the public key is not an Ed25519 key")
        return key
    return Ed25519PublicKey.from_public_bytes(_raw32(text))


def _raw32(text: bytes) -> bytes:
    if len(text) == 32:
        return text
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError("expected PEM, or 32 bytes (raw or base64)")
    return raw


@dataclass(frozen=True)
class Signer:
    """Signs record hashes with one Ed25519 key."""

    key: Ed25519PrivateKey

    @property
    def key_id(self) -> str:
        return key_id(self.key.public_key())

    def sign(self, hash_hex: str) -> str:
        return base64.b64encode(self.key.sign(bytes.fromhex(hash_hex))).decode()


def signature_ok(public: Ed25519PublicKey, hash_hex: str, signature_b64: str) -> bool:
    try:
        public.verify(base64.b64decode(signature_b64), bytes.fromhex(hash_hex))
    except (InvalidSignature, ValueError):
        return False
    return True


def seal(
    body: Mapping[str, Any], sequence: int, previous_hash: str, signer: Signer | None = None
) -> dict[str, Any]:
    """The full spec of record `sequence` after `previous_hash`: body, link, hash, signature."""
    spec = dict(normalize(dict(body)))
    spec["sequence"] = sequence
    spec["previousHash"] = previous_hash
    if signer is not None:
        spec["keyId"] = signer.key_id
    spec["hash"] = record_hash(spec)
    if signer is not None:
        spec["signature"] = signer.sign(spec["hash"])
    return spec


# ------------------------------------------------------------------------------- verification
@dataclass(frozen=True)
class Finding:
    """One problem of the chain: which record, what; `broken` ones fail verification."""

    name: str
    sequence: int | None
    problem: str
    broken: bool = True

    def __str__(self) -> str:
        where = self.name if self.sequence is None else f"{self.name} (sequence {self.sequence})"
        return f"{where}: {self.problem}"


@dataclass(frozen=True)
class Verdict:
    """The chain as `audit verify` found it."""

    records: int
    first: int | None = None
    last: int | None = None
    head_hash: str = ""
    signed: int = 0
    signatures_checked: bool = False
    findings: tuple[Finding, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not any(f.broken for f in self.findings)

    @property
    def first_broken(self) -> Finding | None:
        return next((f for f in self.findings if f.broken), None)


def _created(obj: Mapping[str, Any]) -> datetime | None:
    stamp = (obj.get("metadata") or {}).get("creationTimestamp")
    return parse_time(stamp) if isinstance(stamp, str) else None


def parse_time(stamp: str) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def verify_chain(
    records: Iterable[Mapping[str, Any]],
    public_keys: Sequence[Ed25519PublicKey] = (),
    *,
    require_signatures: bool = False,
    late_write_seconds: float = LATE_WRITE_SECONDS,
) -> Verdict:
    """Check every record's hash, every link, the sequence, names, write order and signatures.

    A link that does not match names the *earlier* record: the later one's own hash covers the
    previousHash it carries, so it is the earlier one that was replaced. A record created after
    the one that follows it was deleted and written again. Records 1..N-1 missing at the start
    are reported but not broken (retention removes the oldest; the chain cannot tell it from a
    deletion there: anchor the head hash `verify` prints somewhere else to catch truncation).
    """
    items = sorted(
        records,
        key=lambda o: (
            int((o.get("spec") or {}).get("sequence") or 0),
            _created(o) or datetime.min.replace(tzinfo=UTC),
        ),
    )
    keys = {key_id(k): k for k in public_keys}
    findings: list[Finding] = []
    signed = 0
    prev: Mapping[str, Any] | None = None
    for obj in items:
        spec = obj.get("spec") or {}
        name = str((obj.get("metadata") or {}).get("name", "?"))
        seq = spec.get("sequence")
        if not isinstance(seq, int) or seq < 1:
            findings.append(Finding(name, None, "no valid sequence"))
            continue
        if name != record_name(seq):
            findings.append(
                Finding(name, seq, f"named {name} but its sequence says {record_name(seq)}")
            )
        stored = spec.get("hash")
        actual = record_hash(spec)
        if stored != actual:
            findings.append(
                Finding(
                    name,
                    seq,
                    "content does not match its hash: edited after it was written "
                    f"(hash says {str(stored)[:12]}…, content hashes to {actual[:12]}…)",
                )
            )
        if prev is None:
            if seq == 1 and spec.get("previousHash"):
                findings.append(Finding(name, seq, "the first record links to a previous one"))
            elif seq > 1:
                findings.append(
                    Finding(
                        name,
                        seq,
                        f"the chain starts here: records 1..{seq - 1} were removed (retention) "
                        "or deleted",
                        broken=False,
                    )
                )
        else:
            pspec = prev.get("spec") or {}
            pname = str((prev.get("metadata") or {}).get("name", "?"))
            pseq = int(pspec.get("sequence") or 0)
            if seq == pseq:
                findings.append(
                    Finding(name, seq, f"{pname} and {name} both claim sequence {seq}: forked")
                )
            elif seq != pseq + 1:
                missing = f"{pseq + 1}" if seq == pseq + 2 else f"{pseq + 1}..{seq - 1}"
                findings.append(
                    Finding(
                        record_name(pseq + 1),
                        pseq + 1,
                        f"missing: records {missing} between {pname} and {name} were deleted",
                    )
                )
            elif spec.get("previousHash") != pspec.get("hash"):
                findings.append(
                    Finding(
                        pname,
                        pseq,
                        f"replaced or edited: its hash is {str(pspec.get('hash'))[:12]}…, but "
                        f"{name}, written after it, recorded {str(spec.get('previousHash'))[:12]}…",
                    )
                )
            pc, c = _created(prev), _created(obj)
            if pc is not None and c is not None and pc > c:
                findings.append(
                    Finding(
                        pname,
                        pseq,
                        f"created at {pc:%Y-%m-%dT%H:%M:%SZ}, after {name} that follows it "
                        f"({c:%Y-%m-%dT%H:%M:%SZ}): deleted and written again",
                    )
                )
        decided = parse_time(str(spec.get("time", "")))
        created = _created(obj)
        if decided and created and (created - decided).total_seconds() > late_write_seconds:
            findings.append(
                Finding(
                    name,
                    seq,
                    f"written {(created - decided).total_seconds():.0f}s after its decision",
                    broken=False,
                )
            )
        sig = spec.get("signature")
        if sig:
            signed += 1
        if keys:
            kid = spec.get("keyId")
            if not sig:
                findings.append(Finding(name, seq, "not signed", broken=require_signatures))
            elif kid not in keys:
                findings.append(
                    Finding(name, seq, f"signed with key {kid}, not one of the keys given")
                )
            elif not signature_ok(keys[kid], str(stored), str(sig)):
                findings.append(Finding(name, seq, "signature does not verify"))
        elif require_signatures and not sig:
            findings.append(Finding(name, seq, "not signed"))
        prev = obj
    first = items[0]["spec"].get("sequence") if items else None
    last_spec = (items[-1].get("spec") or {}) if items else {}
    return Verdict(
        records=len(items),
        first=first if isinstance(first, int) else None,
        last=last_spec.get("sequence") if items else None,
        head_hash=str(last_spec.get("hash", "")),
        signed=signed,
        signatures_checked=bool(keys),
        findings=tuple(findings),
    )


# ------------------------------------------------------------------------------- retention
@dataclass(frozen=True, slots=True)
class Stored:
    """A record as retention sees it."""

    sequence: int
    name: str
    created: datetime


def expired(
    stored: Sequence[Stored], now: datetime, *, max_count: int, max_age_seconds: float
) -> list[Stored]:
    """Records to delete, oldest first: beyond the newest `max_count`, or older than
    `max_age_seconds`. The newest record always stays: a restarted operator continues the
    chain from it."""
    ordered = sorted(stored, key=lambda s: s.sequence)
    if len(ordered) <= 1:
        return []
    head = ordered[-1]
    out = []
    excess = max(0, len(ordered) - max(1, max_count))
    for i, s in enumerate(ordered):
        if s is head:
            break
        too_many = i < excess
        too_old = max_age_seconds > 0 and (now - s.created).total_seconds() > max_age_seconds
        if too_many or too_old:
            out.append(s)
        else:
            break  # age and count both grow with the sequence: the rest is kept
    return out


__all__ = [
    "LATE_WRITE_SECONDS",
    "NAME_PREFIX",
    "Finding",
    "Signer",
    "Stored",
    "Verdict",
    "canonical",
    "digest",
    "expired",
    "key_id",
    "load_private_key",
    "load_public_key",
    "normalize",
    "parse_time",
    "record_hash",
    "record_name",
    "seal",
    "signature_ok",
    "verify_chain",
]

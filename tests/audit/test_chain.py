"""The record chain: canonical hashing, links, signatures, every kind of tampering, retention."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aifactory.api import PlacementRecord
from aifactory.audit.chain import (
    Signer,
    Stored,
    canonical,
    expired,
    load_private_key,
    load_public_key,
    record_hash,
    record_name,
    seal,
    verify_chain,
)

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


def body(i: int) -> dict[str, Any]:
    return {
        "time": (T0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "deployment": {"namespace": "ns", "name": "app", "dataClassification": "restricted"},
        "reason": "Scaled",
        "before": [{"module": "paris", "region": "eu-west", "replicas": i}],
        "after": [{"module": "paris", "region": "eu-west", "replicas": i + 1}],
        "cost": {"total": 0.5 + i, "latency": 0.25, "carbon": 0.25 + i},
        "demand": {"eu-west": 100.0 * i},
    }


def chain(n: int, signer: Signer | None = None) -> list[dict[str, Any]]:
    out, prev = [], ""
    for i in range(1, n + 1):
        spec = seal(body(i), i, prev, signer)
        prev = spec["hash"]
        out.append(
            {
                "metadata": {
                    "name": record_name(i),
                    "creationTimestamp": (T0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
                "spec": spec,
            }
        )
    return out


def test_a_sealed_record_is_a_valid_placement_record() -> None:
    obj = chain(1)[0]
    PlacementRecord.from_manifest({"metadata": obj["metadata"], "spec": obj["spec"]})


def test_canonical_form_ignores_how_the_apiserver_writes_numbers_and_empties() -> None:
    written = {"a": 2.0, "b": [], "c": {}, "d": None, "e": {"z": 1, "y": 0.5}}
    read_back = {"e": {"y": 0.5, "z": 1}, "a": 2, "b": []}
    assert canonical(written) == canonical(read_back) == b'{"a":2,"e":{"y":0.5,"z":1}}'
    spec = seal(body(1), 1, "")
    round_trip = copy.deepcopy(spec)
    round_trip["cost"]["total"] = 1.5  # same value
    round_trip["demand"]["eu-west"] = 100  # 100.0 came back as an integer
    assert record_hash(round_trip) == spec["hash"]


def test_an_intact_chain_verifies() -> None:
    verdict = verify_chain(chain(5))
    assert verdict.ok, verdict.findings
    assert (verdict.records, verdict.first, verdict.last) == (5, 1, 5)
    assert verdict.head_hash == chain(5)[-1]["spec"]["hash"]


def test_an_edited_record_is_named() -> None:
    records = chain(5)
    records[2]["spec"]["after"][0]["module"] = "dallas"  # hash left as it was
    verdict = verify_chain(records)
    assert not verdict.ok
    broken = verdict.first_broken
    assert broken is not None and broken.name == record_name(3) and broken.sequence == 3
    assert "content does not match its hash" in broken.problem


def test_a_record_rewritten_with_a_new_hash_is_named_by_the_next_link() -> None:
    records = chain(5)
    forged = records[2]["spec"]
    forged["after"][0]["module"] = "dallas"
    forged["hash"] = record_hash(forged)  # consistent on its own...
    records[2]["metadata"]["creationTimestamp"] = "2026-05-01T11:00:00Z"  # ...recreated later
    verdict = verify_chain(records)
    broken = verdict.first_broken
    assert broken is not None and broken.name == record_name(3)
    assert "replaced or edited" in broken.problem and record_name(4) in broken.problem
    assert any("deleted and written again" in f.problem for f in verdict.findings)


def test_deleted_records_renames_and_forks_are_broken_links() -> None:
    records = chain(5)
    del records[2]
    broken = verify_chain(records).first_broken
    assert broken is not None and broken.sequence == 3 and "missing" in broken.problem

    records = chain(3)
    records[1]["metadata"]["name"] = "rec-x"
    assert "named rec-x" in str(verify_chain(records).first_broken)

    records = chain(3)
    other = copy.deepcopy(records[2])
    other["metadata"]["name"] = record_name(3)
    other["spec"]["reason"] = "Rebalanced"
    other["spec"]["hash"] = record_hash(other["spec"])
    assert "forked" in str(verify_chain([*records, other]).first_broken)


def test_a_chain_truncated_at_the_start_is_noted_not_broken() -> None:
    verdict = verify_chain(chain(6)[3:])
    assert verdict.ok
    assert "records 1..3 were removed" in verdict.findings[0].problem


def test_signatures_verify_with_the_public_key_only() -> None:
    key = Ed25519PrivateKey.generate()
    signer = Signer(key)
    records = chain(4, signer)
    assert all(r["spec"]["keyId"] == signer.key_id for r in records)
    assert verify_chain(records, [key.public_key()]).ok
    assert verify_chain(records).signed == 4  # not checked without a key, still ok
    # rewriting a chain from a record on needs the key: re-hashing is not enough
    forged = chain(4, signer)
    spec = forged[1]["spec"]
    spec["after"][0]["replicas"] = 99
    spec["hash"] = record_hash(spec)
    prev = spec["hash"]
    for obj in forged[2:]:
        obj["spec"]["previousHash"] = prev
        obj["spec"]["hash"] = prev = record_hash(obj["spec"])
    assert verify_chain(forged).ok  # unsigned check: a full rewrite is consistent
    broken = verify_chain(forged, [key.public_key()]).first_broken
    assert broken is not None and broken.sequence == 2 and "signature" in broken.problem
    # another key's signatures
    other = Ed25519PrivateKey.generate()
    assert "not one of the keys" in str(verify_chain(records, [other.public_key()]).first_broken)


def test_unsigned_records_break_only_when_signatures_are_required() -> None:
    key = Ed25519PrivateKey.generate()
    assert verify_chain(chain(2), [key.public_key()]).ok
    assert not verify_chain(chain(2), [key.public_key()], require_signatures=True).ok


def test_keys_load_from_pem_seed_and_base64() -> None:
    import base64

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    want = Signer(key).key_id
    for data in (pem, seed, base64.b64encode(seed)):
        assert Signer(load_private_key(data)).key_id == want
    from aifactory.audit.chain import key_id

    for data in (pub, pem, base64.b64encode(key.public_key().public_bytes_raw())):
        assert key_id(load_public_key(data)) == want
    with pytest.raises(ValueError):
        load_private_key(b"not a key")


@pytest.mark.parametrize(
    ("count", "age_days", "max_count", "max_age_days", "gone"),
    [
        (5, 0, 10, 90, []),
        (5, 0, 3, 90, [1, 2]),
        (5, 100, 10, 90, [1, 2, 3, 4]),  # all too old, but the head stays
        (5, 100, 10, 0, []),  # 0: no age limit
        (1, 100, 1, 90, []),
    ],
)
def test_retention_by_count_and_age_keeps_the_head(
    count: int, age_days: float, max_count: int, max_age_days: float, gone: list[int]
) -> None:
    now = T0 + timedelta(days=age_days)
    stored = [Stored(i, record_name(i), T0 + timedelta(seconds=i)) for i in range(1, count + 1)]
    out = expired(stored, now, max_count=max_count, max_age_seconds=max_age_days * 86400)
    assert [s.sequence for s in out] == gone


def test_raw_keys_with_whitespace_bytes_at_either_end_load() -> None:
    """A raw 32-byte seed or public key is binary: a first or last byte that happens to be
    whitespace (about one random key in twenty) must not be stripped."""
    for seed in (b"\n" + bytes(range(1, 31)) + b" ", b"\t" * 32, bytes(range(31)) + b"\r"):
        key = Ed25519PrivateKey.from_private_bytes(seed)
        assert Signer(load_private_key(seed)).key_id == Signer(key).key_id
        raw_pub = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        assert (
            load_public_key(raw_pub).public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            == raw_pub
        )

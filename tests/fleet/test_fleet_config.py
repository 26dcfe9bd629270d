"""Errors a developer meets before any control plane starts are clear and actionable."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from hack.fleet import Fleet, FleetConfig, FleetError, NodePool, tools
from hack.fleet.__main__ import _parse_pools
from hack.fleet.fleet import _port_busy


def test_missing_binaries_name_the_directory_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    with pytest.raises(FleetError) as err:
        Fleet(FleetConfig(root=tmp_path / "fleet")).up()
    message = str(err.value)
    assert "kube-apiserver" in message
    assert str(tmp_path / "empty-cache") in message
    assert "make tools" in message


def test_bin_dir_is_keyed_by_pinned_versions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    v = tools.versions()
    assert v["kubernetes"].startswith("v1.")
    path = tools.bin_dir()
    assert path.parent.parent == tmp_path / "aifactory"
    assert v["kubernetes"] in path.parent.name and v["kwok"] in path.parent.name


def test_pool_spec_parsing() -> None:
    pools = _parse_pools("hub=oslo:H100,warsaw:A100:1:4;paris=paris:L40S", nodes=2, gpus=8)
    assert pools["hub"] == (NodePool("oslo", "H100", 2, 8), NodePool("warsaw", "A100", 1, 4))
    assert pools["paris"] == (NodePool("paris", "L40S", 2, 8),)
    with pytest.raises(FleetError, match="cluster=module:MODEL"):
        _parse_pools("hub", nodes=2, gpus=8)


def test_busy_port_is_detected() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert _port_busy(s.getsockname()[1])


def test_start_without_fleet_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match="no fleet is running"):
        Fleet(FleetConfig(root=tmp_path)).start("member-1")


def test_gateway_api_is_pinned_with_its_checksum(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    v = tools.versions()["gateway-api"]
    assert v.startswith("v1.")
    go_sum = (tools.GATEWAY_API_DIR / "go.sum").read_text()
    assert f"{tools.GATEWAY_API_MODULE} {v} h1:" in go_sum  # verified by `go mod download`
    # apart from the binaries: a new Gateway API pin rebuilds nothing
    assert tools.gateway_api_crds_dir() == tmp_path / "aifactory" / f"gateway-api-{v}" / "standard"
    assert "gateway" not in tools.bin_dir().parent.name

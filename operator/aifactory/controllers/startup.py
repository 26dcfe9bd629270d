"""Operator start-up: kopf settings, the Runtime, the admission webhook server and config.

All kopf configuration happens in one place, the startup step `runtime_factory` returns (run
from kopf's `on.startup` handler, as the kopf docs recommend).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import logging
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kopf
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration

from aifactory import metrics
from aifactory.clusters import HUB_CLUSTER, ClusterClient, Limits, MemberClients
from aifactory.serving import Endpoints
from aifactory.settings import OperatorSettings

from .accountability import Accountability
from .admission import webhook_configuration
from .events import EventRecorder
from .executor import MemberExecutor
from .leader import LeaderElector
from .routers import routing_endpoint
from .runtime import GROUP, Runtime
from .writer import HubWriter

log = logging.getLogger(__name__)


_LAST_CERT: list[Path | None] = [None]


def self_signed(host: str, directory: Path) -> tuple[Path, Path]:
    """A throw-away serving certificate for the local fleet's webhook (production mounts one)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    _LAST_CERT[0] = cert_path
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def hub_api_client() -> ApiClient:
    """The hub's API client: in-cluster credentials when running in a Pod, else kubeconfig."""
    try:
        kube_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kube_config.ConfigException:
        kube_config.load_kube_config()  # type: ignore[no-untyped-call]
    cfg = Configuration.get_default_copy()
    cfg.retries = 0
    # watches, writers, the executor and monitors share it: more than urllib3's default 10
    cfg.connection_pool_maxsize = 32
    return ApiClient(cfg)


def _count_request(cluster: str, verb: str, status: int | None) -> None:
    metrics.MEMBER_REQUESTS.labels(cluster, verb, str(status or 0)).inc()


class Endless:
    """kopf's API retry backoffs, endless: an apiserver outage of any length is waited out,
    never escalated into a handler or watcher giving up for good."""

    def __iter__(self) -> Iterator[float]:
        yield from (1, 1, 2, 3, 5, 8)
        while True:
            yield 10


def runtime_factory(
    s: OperatorSettings, endpoints: Endpoints | None = None
) -> Callable[[kopf.OperatorSettings, dict[str, Any]], Runtime]:
    """The startup step that configures kopf and builds the Runtime (called by kopf)."""

    def make(settings: kopf.OperatorSettings, kwargs: dict[str, Any]) -> Runtime:
        settings.posting.level = logging.INFO
        settings.watching.server_timeout = 300
        settings.networking.error_backoffs = Endless()
        settings.peering.standalone = True  # leader election is ours (Lease), see leader.py
        settings.process.ultimate_exiting_timeout = s.shutdown_grace_seconds
        if s.webhook_enabled:
            settings.admission.server = webhook_server(s)
        hub = ClusterClient(
            hub_api_client(),
            HUB_CLUSTER,
            Limits(qps=max(100.0, s.member_qps * 2), burst=max(200, s.member_burst * 2)),
            on_request=_count_request,
        )
        rt: Runtime

        def changed(cluster: str, kind: str, owner: str) -> None:
            if owner:
                rt.mark([owner])
            elif kind == "nodes":
                rt.mark(
                    ref
                    for ref, st in list(rt.decided.items())
                    if st.unsatisfied is not None and st.unsatisfied.replicas > 0
                )

        members = MemberClients(
            hub,
            limits=Limits(qps=s.member_qps, burst=s.member_burst),
            on_change=changed,
            on_request=_count_request,
        )
        executor = MemberExecutor(
            threads_per_cluster=s.executor_threads,
            on_done=lambda ref: rt.mark([ref]),
            advisory=s.advisory,
        )
        recorder = EventRecorder(hub, host=s.pod_name or "")

        def written(key: str, ok: bool, body: dict[str, Any]) -> None:
            if key.endswith("#routing"):
                ref = key.split("#", 1)[0]
                if ok:
                    rt.routing_written[ref] = (body.get("data") or {}).get("routing.json", "")
                else:
                    rt.routing_written.pop(ref, None)
                return
            if ok and "#" not in key:
                rt.written[key] = {"status": body.get("status")}
            elif not ok and "#" not in key:
                rt.written.pop(key, None)
            if "#finalizer" in key:
                rt.mark([key.split("#", 1)[0]])

        writer = HubWriter(hub, threads=s.executor_threads, on_done=written)
        elector = None
        if s.leader_election:
            identity = s.pod_name or f"{socket.gethostname()}-{os.getpid()}"
            elector = LeaderElector(
                hub,
                namespace=s.namespace,
                name=s.lease_name,
                identity=identity,
                lease_duration=s.lease_duration,
                renew_deadline=s.lease_renew_deadline,
                retry_period=s.lease_retry_period,
                on_change=lambda leader: _leadership(rt, leader),
            )
        rt = Runtime(
            settings=s,
            hub=hub,
            members=members,
            executor=executor,
            recorder=recorder,
            writer=writer,
            elector=elector,
            indexes={k: v for k, v in kwargs.items() if k.endswith("_index")},
        )
        rt.accountability = Accountability(rt)
        members.start()
        recorder.start()
        writer.start()
        if elector is not None:
            elector.start()
        else:
            metrics.IS_LEADER.set(1)
        if s.webhook_enabled and s.webhook_managed:
            _manage_webhook(hub, s)
        if endpoints is not None:
            endpoints.ready = rt.warm.is_set
            endpoints.views["/routing"] = routing_endpoint(rt)
        return rt

    return make


def _leadership(rt: Runtime, leader: bool) -> None:
    metrics.IS_LEADER.set(1 if leader else 0)
    if leader:  # a new leader re-plans everything it knows about
        rt.mark(list(rt.decided))


def webhook_server(s: OperatorSettings) -> kopf.WebhookServer:
    cert, key = s.webhook_cert_file, s.webhook_key_file
    if cert is None or key is None:
        cert, key = self_signed(s.webhook_host, Path(tempfile.mkdtemp(prefix="aifactory-webhook-")))
    return kopf.WebhookServer(
        addr=s.webhook_listen,
        port=s.webhook_port,
        host=s.webhook_host,
        certfile=str(cert),
        pkeyfile=str(key),
        cafile=str(s.webhook_ca_file or cert),
    )


WEBHOOK_CONFIGURATION = f"validating.{GROUP}"


def _manage_webhook(hub: ClusterClient, s: OperatorSettings) -> None:
    """Apply our ValidatingWebhookConfiguration (the local fleet; the chart renders it)."""
    ca = Path(str(s.webhook_ca_file or s.webhook_cert_file or _LAST_CERT[0])).read_bytes()
    config = webhook_configuration(
        WEBHOOK_CONFIGURATION,
        {
            "url": f"https://{s.webhook_host}:{s.webhook_port}",
            "caBundle": base64.b64encode(ca).decode(),
        },
        timeout_seconds=s.webhook_timeout_seconds,
        failure_policy=s.webhook_failure_policy,
    )
    hub.apply(
        f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{config['metadata']['name']}",
        config,
        "aifactory-operator",
        what="apply ValidatingWebhookConfiguration",
    )


def remove_managed_webhook(hub: ClusterClient) -> None:
    """Remove our managed configuration when the operator stops (a stopped local operator must
    not leave the hub refusing InferenceDeployment writes)."""
    hub.delete(
        f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{WEBHOOK_CONFIGURATION}",
        what="delete ValidatingWebhookConfiguration",
    )

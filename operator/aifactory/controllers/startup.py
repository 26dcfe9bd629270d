"""Operator start-up: kopf settings, metrics server, admission webhook server.

All kopf configuration lives here, in one `on.startup` handler, as the kopf docs recommend.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import tempfile
from pathlib import Path
from typing import Any

import kopf
from prometheus_client import start_http_server

from .runtime import GROUP, SETTINGS, runtime

log = logging.getLogger(__name__)


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


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    s = SETTINGS
    runtime()  # fail fast on hub credentials
    # progress and diff-base in annotations: our CRD status schema is strict, kopf's own
    # status fields would be pruned
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{GROUP}/cleanup-member-objects"
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.peering.priority = s.effective_peering_priority
    settings.peering.lifetime = s.peering_lifetime
    settings.peering.standalone = s.standalone
    settings.peering.name = "aifactory-operator"
    settings.peering.clusterwide = True
    if s.metrics_port:
        start_http_server(s.metrics_port)
        log.info("metrics on :%d/metrics", s.metrics_port)
    if s.webhook_enabled:
        cert, key = s.webhook_cert_file, s.webhook_key_file
        if cert is None or key is None:
            cert, key = self_signed(
                s.webhook_host, Path(tempfile.mkdtemp(prefix="aifactory-webhook-"))
            )
        settings.admission.server = kopf.WebhookServer(
            addr=s.webhook_listen,
            port=s.webhook_port,
            host=s.webhook_host,
            certfile=str(cert),
            pkeyfile=str(key),
            cafile=str(s.webhook_ca_file or cert),
        )
        if s.webhook_managed:  # else the Helm chart renders the configuration
            settings.admission.managed = f"validating.{GROUP}"

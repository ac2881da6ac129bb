"""Run settings of the probe agent: timeouts, bounds, trust, and where it runs (Downward API)."""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from egress.probe_plan import FirewallProfile
from egress.results import Assurance, Location

# Downward API variables the Job/CronJob manifest sets (documented in docs/probe.md).
ENV_NODE = "EGRESS_NODE_NAME"
ENV_POD = "EGRESS_POD_NAME"
ENV_NAMESPACE = "EGRESS_POD_NAMESPACE"
ENV_NODE_POOL = "EGRESS_NODE_POOL"
ENV_CLUSTER = "EGRESS_CLUSTER"
ENV_NODE_IP = "EGRESS_NODE_IP"
ENV_POD_IP = "EGRESS_POD_IP"
ENV_API_SERVER = "KUBERNETES_SERVICE_HOST"


@dataclass(frozen=True)
class ProbeSettings:
    """Everything that shapes one run; defaults are the documented CLI defaults."""

    phase_timeout: float = 3.0  # seconds per ladder phase (DNS, TCP, TLS, HTTP, NTP)
    deadline: float = 60.0  # seconds for the whole run
    concurrency: int = 32  # checks probing at the same time
    per_destination: int = 4  # checks probing the same host at the same time
    dns_concurrency: int = 16  # concurrent DNS queries (conntrack race on UDP DNS)
    retries: int = 2  # extra attempts while the observed verdict differs from the expected
    retry_delay: float = 0.25  # seconds between attempts
    api_server: str | None = None  # --api-server, used when the env has no FQDN
    control_check: str | None = None  # explicit control check id, else the first success
    trust_store: Path | None = None  # CA bundle; None means the system / certifi store
    body_excerpt_bytes: int = 256  # bounded evidence from HTTP bodies
    # --require-assurance: a block known less surely than this leaves a deny check unproven
    minimum_assurance: Assurance | None = None
    firewall_profile: FirewallProfile | None = None  # --profile; None: the plan's profile


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def api_server_host(env: Mapping[str, str], option: str | None) -> str | None:
    """KUBERNETES_SERVICE_HOST when AKS injected the FQDN there, else the option, else None."""
    injected = env.get(ENV_API_SERVER, "").strip().rstrip(".")
    if injected and not is_ip_literal(injected):
        return injected
    return option.strip().rstrip(".") if option else None


def location_from_env(
    env: Mapping[str, str], *, cluster: str | None = None, node_pool: str | None = None
) -> Location:
    """Where this run happens: flags win over the Downward API environment."""

    def pick(name: str) -> str | None:
        return env.get(name) or None

    return Location(
        cluster=cluster or pick(ENV_CLUSTER),
        node_pool=node_pool or pick(ENV_NODE_POOL),
        node=pick(ENV_NODE),
        pod=pick(ENV_POD),
        namespace=pick(ENV_NAMESPACE),
        node_ip=pick(ENV_NODE_IP),
        pod_ip=pick(ENV_POD_IP),
    )


def current_env() -> Mapping[str, str]:
    return dict(os.environ)


def trust_context(trust_store: Path | None) -> ssl.SSLContext:
    """A verifying client context: the given CA bundle, else the system store plus certifi."""
    context = ssl.create_default_context(cafile=str(trust_store) if trust_store else None)
    if trust_store is None:
        try:
            import certifi

            context.load_verify_locations(cafile=certifi.where())
        except (ImportError, OSError):  # the system store alone is still a public-CA store
            pass
    return context


def unverified_context() -> ssl.SSLContext:
    """A context that completes any handshake so an untrusted certificate can be recorded."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context

"""The AKS resource provider's own egress list (outboundNetworkDependenciesEndpoints)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from egress.azure.boundary import map_azure_errors
from egress.azure.cloud import Connection, arm_client

if TYPE_CHECKING:
    from azure.mgmt.containerservice import ContainerServiceClient

ENDPOINTS_ACTION = (
    "Microsoft.ContainerService/managedClusters/outboundNetworkDependenciesEndpoints/read"
)


@dataclass(frozen=True, slots=True)
class AksEndpoint:
    """One (category, domain, port, protocol) AKS says the cluster needs."""

    category: str
    domain: str  # lowercased; may be a wildcard
    port: int | None
    protocol: str  # lowercased: https, http, tcp, udp
    description: str


@contextmanager
def container_service_client(connection: Connection) -> Iterator[ContainerServiceClient]:
    """A ContainerServiceClient for the connection's cloud; closes what it made."""
    from azure.mgmt.containerservice import ContainerServiceClient

    with arm_client(connection, ContainerServiceClient) as client:
        yield client


def cluster_endpoints(
    connection: Connection, resource_group: str, cluster: str
) -> tuple[AksEndpoint, ...]:
    """Every endpoint AKS lists for the cluster, across all pages."""
    resource = (
        f"managed cluster '{cluster}' in resource group '{resource_group}' "
        f"(subscription {connection.subscription_id})"
    )
    found: list[AksEndpoint] = []
    with (
        container_service_client(connection) as client,
        map_azure_errors(resource, needs=(ENDPOINTS_ACTION,)),
    ):
        pages: Any = client.managed_clusters.list_outbound_network_dependencies_endpoints(
            resource_group, cluster
        )
        for item in pages:
            for dependency in item.endpoints or []:
                domain = (dependency.domain_name or "").strip().lower().rstrip(".")
                if not domain:
                    continue
                for detail in dependency.endpoint_details or [None]:
                    found.append(
                        AksEndpoint(
                            category=item.category or "",
                            domain=domain,
                            port=getattr(detail, "port", None),
                            protocol=str(getattr(detail, "protocol", "") or "").lower(),
                            description=str(getattr(detail, "description", "") or ""),
                        )
                    )
    return tuple(found)

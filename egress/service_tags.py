"""Microsoft's Service Tags data: address prefixes per tag, for targets that cannot use a tag.

Two sources, one value: the weekly ``ServiceTags_Public_YYYYMMDD.json`` download (or its
Government/China counterparts) that the user passes with ``--service-tags FILE``, or the
``service_tags.list(location)`` answer of azure-mgmt-network (``from_sdk``). Both have the
same shape: ``{changeNumber, cloud, values: [{name, properties: {addressPrefixes, ...}}]}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from egress.errors import InputError

DOWNLOAD_URL = "https://www.microsoft.com/download/details.aspx?id=56519"
SUPPLY_HINT = (
    f"pass --service-tags ServiceTags_Public_YYYYMMDD.json (weekly download, {DOWNLOAD_URL}; "
    "use the Government or China file for those clouds)"
)


@dataclass(frozen=True, slots=True)
class ServiceTags:
    """Address prefixes by tag name, with the data's changeNumber and where it came from."""

    change_number: str
    cloud: str
    source: str  # file path or "service_tags.list(<location>)"
    prefixes: Mapping[str, tuple[str, ...]]

    def expand(self, tag: str) -> tuple[str, ...] | None:
        """The tag's prefixes (IPv4 first, then IPv6, each sorted), or None if unknown."""
        return self.prefixes.get(tag)


def parse_service_tags(document: Any, source: str) -> ServiceTags:
    """Validate the documented shape; one sentence naming the source and the fix on error."""
    if not isinstance(document, dict) or not isinstance(document.get("values"), list):
        raise InputError(
            f"{source}: not a Service Tags file (expected an object with changeNumber, cloud "
            f"and values); {SUPPLY_HINT}."
        )
    prefixes: dict[str, tuple[str, ...]] = {}
    for index, value in enumerate(document["values"]):
        name = value.get("name") if isinstance(value, dict) else None
        properties = value.get("properties") if isinstance(value, dict) else None
        listed = properties.get("addressPrefixes") if isinstance(properties, dict) else None
        if not isinstance(name, str) or not isinstance(listed, list):
            raise InputError(
                f"{source}: values[{index}] has no name or properties.addressPrefixes; "
                f"{SUPPLY_HINT}."
            )
        prefixes[name] = tuple(sorted(map(str, listed), key=lambda p: (":" in p, p)))
    return ServiceTags(
        change_number=str(document.get("changeNumber", "")),
        cloud=str(document.get("cloud", "")),
        source=source,
        prefixes=prefixes,
    )


def load_service_tags(path: Path) -> ServiceTags:
    """Read a ServiceTags_*.json file."""
    try:
        document = json.loads(path.read_bytes())
    except OSError as error:
        raise InputError(
            f"cannot read --service-tags {path}: {error.strerror}; {SUPPLY_HINT}."
        ) from None
    except ValueError as error:
        raise InputError(f"--service-tags {path} is not JSON ({error}); {SUPPLY_HINT}.") from None
    return parse_service_tags(document, str(path))


def from_sdk(result: Any, location: str) -> ServiceTags:
    """Convert ``NetworkManagementClient.service_tags.list(location)`` (a ServiceTagsListResult)."""
    document = {
        "changeNumber": result.change_number,
        "cloud": result.cloud,
        "values": [
            {"name": v.name, "properties": {"addressPrefixes": v.properties.address_prefixes}}
            for v in result.values_property or ()  # azure-mgmt-network 33: not `values`
        ],
    }
    return parse_service_tags(document, f"service_tags.list({location})")

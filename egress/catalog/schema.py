"""The catalog file format (fqdn_lists/<Cloud>.yaml) as validated, frozen pydantic models."""

from __future__ import annotations

import re
from collections import Counter
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from egress.catalog.names import (
    APP_PROTOCOLS,
    check_cidr,
    check_fqdn_tag,
    check_service_tag,
    normalise_fqdn,
    parse_port_spec,
    wildcard_covers,
)
from egress.model import Cloud

CATALOG_SCHEMA_VERSION: Literal[1] = 1
DestinationType = Literal["fqdn", "wildcard_fqdn", "fqdn_tag", "service_tag", "cidr", "placeholder"]
Condition = Literal["not_private_cluster", "not_konnectivity"]
PLACEHOLDERS = ("api_server_ip", "custom_dns_ip")
PROBE_API_SERVER = "api-server"
UNVERIFIABLE_PREFIX = "unverifiable:"
_TEMPLATE = re.compile(r"\{(region|location)\}")
_SAMPLE_REGION = "sampleregion"


def expand_region(text: str, region: str) -> str:
    """Replace the {region}/{location} placeholders with the region name."""
    return _TEMPLATE.sub(region, text)


def _check_template(text: str) -> str:
    sample = expand_region(text, _SAMPLE_REGION)
    if "{" in sample or "}" in sample:
        raise ValueError(f"'{text}' has an unknown placeholder; only {{region}} and {{location}}")
    return sample


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Entry(_Frozen):
    """One requirement: a destination, its ports, why it is needed and how to probe it."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=60)
    type: DestinationType
    destination: str = Field(min_length=1)
    ports: tuple[str, ...] = Field(min_length=1)
    purpose: str = Field(min_length=1)
    doc: str | None = Field(default=None, pattern=r"^https://")
    conditions: tuple[Condition, ...] = ()
    probe: str | None = None
    # Whether a TLS-inspecting proxy may re-sign this traffic (the API server forbids it).
    tls_inspection: Literal["allowed", "forbidden"] = "allowed"

    @field_validator("ports")
    @classmethod
    def _ports_parse(cls, ports: tuple[str, ...]) -> tuple[str, ...]:
        for spec in ports:
            parse_port_spec(spec)
        if len(set(ports)) != len(ports):
            raise ValueError("lists the same protocol:port twice; remove the duplicate")
        return ports

    @model_validator(mode="after")
    def _destination_fits_type(self) -> Entry:
        sample = _check_template(self.destination)
        protocols = {parse_port_spec(spec)[0] for spec in self.ports}
        is_app = protocols <= set(APP_PROTOCOLS)
        if self.type == "fqdn":
            normalise_fqdn(sample, wildcard=False)
        elif self.type == "wildcard_fqdn":
            if not sample.startswith("*."):
                raise ValueError(f"destination '{self.destination}' must start with '*.'")
            normalise_fqdn(sample, wildcard=True)
        elif self.type == "fqdn_tag":
            check_fqdn_tag(sample)
        elif self.type == "service_tag":
            check_service_tag(sample.replace(_SAMPLE_REGION, "region"))
        elif self.type == "cidr":
            check_cidr(sample)
        elif self.destination not in PLACEHOLDERS:
            raise ValueError(
                f"placeholder '{self.destination}' is unknown; use one of {', '.join(PLACEHOLDERS)}"
            )
        if self.type in ("wildcard_fqdn", "fqdn_tag") and not is_app:
            raise ValueError(
                f"type {self.type} works only with http/https ports (application rules), "
                f"not {sorted(protocols)}"
            )
        if self.type in ("service_tag", "cidr", "placeholder") and protocols & set(APP_PROTOCOLS):
            raise ValueError(
                f"type {self.type} needs tcp/udp ports (network rules); http/https match by name"
            )
        self._check_probe(sample)
        return self

    def _check_probe(self, sample: str) -> None:
        if self.probe is None:
            if self.type == "wildcard_fqdn":
                raise ValueError(
                    "a wildcard needs a probe hint: a concrete host under it, 'api-server', "
                    "or 'unverifiable: <why>'"
                )
            return
        if self.probe == PROBE_API_SERVER:
            return
        if self.probe.startswith(UNVERIFIABLE_PREFIX):
            if not self.probe[len(UNVERIFIABLE_PREFIX) :].strip():
                raise ValueError("probe 'unverifiable:' must say why after the colon")
            return
        host = normalise_fqdn(_check_template(self.probe), wildcard=False)
        if self.type == "wildcard_fqdn" and not wildcard_covers(
            normalise_fqdn(sample, wildcard=True), host
        ):
            raise ValueError(f"probe host '{self.probe}' is not under '{self.destination}'")

    @property
    def unverifiable_reason(self) -> str | None:
        if self.probe and self.probe.startswith(UNVERIFIABLE_PREFIX):
            return self.probe[len(UNVERIFIABLE_PREFIX) :].strip()
        return None


class Feature(_Frozen):
    """A named group of entries the user enables together ('required' is always on)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=40)
    description: str = Field(min_length=1)
    doc: str = Field(pattern=r"^https://")
    warning: str | None = None  # shown when the feature is enabled (e.g. a retirement)
    entries: tuple[Entry, ...] = Field(min_length=1)


class Catalog(_Frozen):
    """One cloud's catalog file."""

    schema_version: Literal[1]
    cloud: Cloud
    fqdn_tag: str | None = None
    regions: tuple[str, ...] = Field(min_length=1)
    features: tuple[Feature, ...] = Field(min_length=1)

    @field_validator("regions")
    @classmethod
    def _regions_valid(cls, regions: tuple[str, ...]) -> tuple[str, ...]:
        for region in regions:
            if not re.fullmatch(r"[a-z][a-z0-9]*", region):
                raise ValueError(f"region '{region}' must be lowercase letters and digits")
        dupes = sorted(r for r, n in Counter(regions).items() if n > 1)
        if dupes:
            raise ValueError(f"lists regions more than once: {', '.join(dupes)}")
        return regions

    @model_validator(mode="after")
    def _unique_names(self) -> Catalog:
        features = Counter(f.name for f in self.features)
        dupes = sorted(name for name, n in features.items() if n > 1)
        if dupes:
            raise ValueError(f"duplicate feature names: {', '.join(dupes)}; rename one")
        reserved = sorted(set(features) & {"policy", "canary", "all"})
        if reserved:
            raise ValueError(
                f"feature name {reserved[0]} is reserved (policy entries, canaries, "
                "--feature all); "
                "rename the feature"
            )
        if "required" not in features:
            raise ValueError("has no 'required' feature; every catalog needs one")
        ids = Counter(e.id for f in self.features for e in f.entries)
        dupes = sorted(entry_id for entry_id, n in ids.items() if n > 1)
        if dupes:
            raise ValueError(f"duplicate entry ids: {', '.join(dupes)}; ids are unique per file")
        return self

    def feature(self, name: str) -> Feature:
        return next(f for f in self.features if f.name == name)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

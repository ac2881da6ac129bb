"""Name and address checks shared by the catalog, the policy file and the compiler."""

from __future__ import annotations

import functools
import ipaddress
import re

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_SERVICE_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9]+)*$")
_FQDN_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
# ASCII digits only: int() also reads Arabic-Indic and other Unicode digits ("٤٤٣" is 443).
_DIGITS = re.compile(r"^[0-9]{1,5}\Z")


class InvalidName(ValueError):  # noqa: N818  (a ValueError so pydantic reports it)
    """A destination that is not a valid FQDN, wildcard, tag or CIDR; the text says why."""


@functools.lru_cache(maxsize=65536)
def normalise_fqdn(value: str, *, wildcard: bool) -> str:
    """Lowercase, strip the trailing dot, IDNA-encode and validate an FQDN or wildcard FQDN.

    A wildcard is allowed only as the whole leftmost label (``*.example.com``) and only
    when ``wildcard`` is true; the apex is never implied.
    """
    name = value.strip().lower().rstrip(".")
    if not name:
        raise InvalidName("is empty; give a host name such as mcr.microsoft.com")
    labels = name.split(".")
    if labels[0] == "*":
        if not wildcard:
            raise InvalidName(
                f"'{value}' is a wildcard where a plain FQDN is required; "
                "wildcards are allowed only in application (HTTP/HTTPS) rules"
            )
        labels = labels[1:]
        if len(labels) < 2:
            raise InvalidName(
                f"'{value}' is too broad; a wildcard needs at least two labels after '*.'"
            )
    if any("*" in label for label in labels):
        raise InvalidName(
            f"'{value}' has a wildcard in the wrong place; '*' may only be the whole leftmost "
            "label, as in '*.example.com'"
        )
    try:
        ascii_labels = [
            label if label.isascii() else label.encode("idna").decode("ascii") for label in labels
        ]
    except UnicodeError as exc:
        raise InvalidName(f"'{value}' is not a valid international domain name ({exc})") from None
    for label in ascii_labels:
        if not _LABEL.match(label):
            raise InvalidName(
                f"'{value}' has an invalid label '{label}'; labels are 1-63 letters, digits or "
                "hyphens, not starting or ending with a hyphen"
            )
    if len(ascii_labels) < 2:
        raise InvalidName(f"'{value}' is not fully qualified; use a name with a domain")
    if ascii_labels[-1].isdigit():
        raise InvalidName(f"'{value}' looks like an IP address; put addresses in a 'cidr' entry")
    result = ".".join(ascii_labels)
    if len(result) > 253:
        raise InvalidName(f"'{value}' is longer than 253 characters")
    return ("*." + result) if name.startswith("*.") else result


def is_wildcard(fqdn: str) -> bool:
    return fqdn.startswith("*.")


def wildcard_covers(wildcard: str, fqdn: str) -> bool:
    """True when ``*.x.com`` matches ``fqdn`` (any depth below x.com, never the apex x.com)."""
    return fqdn.endswith(wildcard[1:]) and fqdn != wildcard


def check_cidr(value: str) -> str:
    """Validate an IPv4/IPv6 address or CIDR and return its canonical text."""
    try:
        network = ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as exc:
        raise InvalidName(
            f"'{value}' is not a valid IP address or CIDR ({exc}); write it like 10.42.1.0/24"
        ) from None
    if network.num_addresses == 1:
        return str(network.network_address)
    return str(network)


def check_ip(value: str) -> str:
    """Validate a single IP address and return its canonical text."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise InvalidName(f"'{value}' is not a valid IP address; write it like 10.42.2.4") from None


def check_service_tag(value: str) -> str:
    if not _SERVICE_TAG.match(value):
        raise InvalidName(f"'{value}' is not a service tag name such as AzureCloud.eastus")
    return value


def check_fqdn_tag(value: str) -> str:
    if not _FQDN_TAG.match(value):
        raise InvalidName(f"'{value}' is not an FQDN tag name such as AzureKubernetesService")
    return value


APP_PROTOCOLS = ("http", "https")
NET_PROTOCOLS = ("tcp", "udp")


@functools.lru_cache(maxsize=4096)
def parse_port_spec(value: str) -> tuple[str, int, int]:
    """Parse ``proto:port`` or ``proto:lo-hi`` (tcp, udp, http, https) into its parts."""
    proto, sep, ports = str(value).strip().lower().partition(":")
    if not sep:
        raise InvalidName(f"'{value}' must be written protocol:port, for example https:443")
    if proto not in APP_PROTOCOLS + NET_PROTOCOLS:
        raise InvalidName(
            f"'{value}' has unknown protocol '{proto}'; use one of tcp, udp, http, https"
        )
    lo_text, dash, hi_text = ports.partition("-")
    if not _DIGITS.match(lo_text) or (dash and not _DIGITS.match(hi_text)):
        raise InvalidName(
            f"'{value}' has a port that is not a number (ASCII digits 1-65535); write e.g. tcp:443"
        )
    lo, hi = int(lo_text), int(hi_text) if dash else int(lo_text)
    if not 1 <= lo <= hi <= 65535:
        raise InvalidName(f"'{value}' has a port out of range; ports are 1-65535 (low-high)")
    if proto in APP_PROTOCOLS and lo != hi:
        raise InvalidName(f"'{value}': HTTP/HTTPS rules take a single port, not a range")
    if proto in APP_PROTOCOLS and hi > 64000:
        raise InvalidName(f"'{value}': Azure Firewall application rules take ports 1-64000")
    return proto, lo, hi

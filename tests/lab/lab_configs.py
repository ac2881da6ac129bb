"""What the lab firewall runs, as data and text: its internet, names, policy, topology and configs.

Every function here is pure: it renders squid.conf, the nft rule sets and dnsmasq's files from
the :class:`Policy`, the :class:`Topology` (random names, fixed addresses) and the
:class:`Paths`. :mod:`firewall_lab` starts the processes that run them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

SQUID = "/usr/sbin/squid"
CERTGEN = "/usr/lib/squid/security_file_certgen"
SQUID_TEMPLATES = Path("/usr/share/squid/errors/templates")
DNSMASQ = "/usr/sbin/dnsmasq"
# What Azure Firewall answers to a denied HTTP request: status 470 and this body (known from
# third-party sources such as https://http.dev/470, not from a Microsoft page).
AZFW_DENY_BODY = (
    "HTTP request from %i to %H:%p. Action: Deny. Reason: No rule matched. "
    "Proceeding with default action."
)
# Squid's access log: one line per decision, fields separated by single spaces.
SQUID_LOGFORMAT = (
    "%ts.%03tu %>a %>p %>la %>lp %<a %<p %ssl::>sni %ssl::bump_mode %rm %ru %>Hs %Ss %tr"
)
SQUID_LOG_FIELDS = (
    *("time", "client_ip", "client_port", "local_ip", "local_port", "server_ip", "server_port"),
    *("sni", "bump_mode", "method", "url", "status", "squid_status", "elapsed_ms"),
)
LAB_ZONE = "lab.test"
# The API server entry of AKS (*.hcp.<region>.azmk8s.io); resolved locally, never contacted.
API_SERVER = "lab-cluster-1a2b3c4d.hcp.eastus.azmk8s.io"


# --------------------------------------------------------------------------- the internet


@dataclass(frozen=True)
class Host:
    """One internet address and what answers there (``tcp``/``udp``: port -> kind)."""

    name: str
    address: str
    tcp: dict[int, str] = field(default_factory=dict)  # https | http | tls
    udp: dict[int, str] = field(default_factory=dict)  # ntp | dns
    fate: str = "serve"  # serve | blackhole (drops everything) | down (ICMP host unreachable)
    every_port: bool = False  # a canary server: every TCP port answers TLS


HEALTHY = Host(
    "healthy", "198.19.1.1", tcp={80: "http", 443: "https", 8443: "tls"}, udp={123: "ntp"}
)
REFUSES = Host("refuses", "198.19.2.1")  # up, nothing listens: RST
BLACKHOLE = Host("blackhole", "198.19.3.1", fate="blackhole")
DOWN = Host("down", "198.19.4.1", fate="down")
CANARY = Host("canary", "198.19.7.1", tcp={9443: "tls"}, every_port=True)
OPEN_RESOLVER = Host("resolver-open", "198.19.53.1", udp={53: "dns"})
CLOSED_RESOLVER = Host("resolver-closed", "198.19.53.2", udp={53: "dns"})
INTERNET = (HEALTHY, REFUSES, BLACKHOLE, DOWN, CANARY, OPEN_RESOLVER, CLOSED_RESOLVER)

# Lab names -> address (dnsmasq's hosts file). Destinations are alive unless named for a fate.
NAMES: dict[str, str] = {
    f"healthy.{LAB_ZONE}": HEALTHY.address,
    f"web.{LAB_ZONE}": HEALTHY.address,
    f"leaky.{LAB_ZONE}": HEALTHY.address,
    f"unlisted.{LAB_ZONE}": HEALTHY.address,
    f"inspected.{LAB_ZONE}": HEALTHY.address,
    f"refuses.{LAB_ZONE}": REFUSES.address,
    f"blackhole.{LAB_ZONE}": BLACKHOLE.address,
    f"down.{LAB_ZONE}": DOWN.address,
    f"canary.{LAB_ZONE}": CANARY.address,
    API_SERVER: HEALTHY.address,  # resolved locally, never contacted
}


@dataclass(frozen=True)
class Policy:
    """The lab firewall's own rules, from which the default configs are rendered."""

    # Application rules, HTTPS: SNI names squid splices (or bumps, when also in `inspect`).
    tls_allowed: tuple[str, ...] = (
        f"healthy.{LAB_ZONE}",
        f"leaky.{LAB_ZONE}",
        f"refuses.{LAB_ZONE}",
        f"blackhole.{LAB_ZONE}",
        f"down.{LAB_ZONE}",
        f"inspected.{LAB_ZONE}",
        API_SERVER,
    )
    # ... of those, the ones squid decrypts and re-signs with its own CA (TLS inspection).
    inspect: tuple[str, ...] = (f"inspected.{LAB_ZONE}", API_SERVER)
    # Application rules, HTTP: Host names squid forwards; every other Host gets the 470 deny.
    http_allowed: tuple[str, ...] = (f"web.{LAB_ZONE}", f"leaky.{LAB_ZONE}")
    # Network rules: (comment, nft match) accepted in the forward chain; the rest is dropped.
    network_rules: tuple[tuple[str, str], ...] = (
        ("net/tls-8443", "ip daddr 198.19.0.0/16 tcp dport 8443"),
        ("net/ntp", f"ip daddr {HEALTHY.address} udp dport 123"),
        ("net/dns-open-resolver", f"ip daddr {OPEN_RESOLVER.address} udp dport 53"),
    )


# --------------------------------------------------------------------------- topology


@dataclass(frozen=True)
class Topology:
    """Names and addresses, fixed before anything starts so configs can be rendered."""

    tag: str
    pod_ns: str
    firewall_ns: str
    internet_ns: str
    pod_if: str  # in the pod netns
    firewall_pod_if: str  # in the firewall netns, facing the pod
    firewall_tun: str  # in the firewall netns, the wire to the internet
    internet_tun: str
    pod_ip: str = "10.240.0.10"
    firewall_ip: str = "10.240.0.1"  # the pod's gateway and DNS proxy
    pod_prefix: str = "10.240.0.0/16"
    firewall_wire_ip: str = "198.18.0.1"
    internet_wire_ip: str = "198.18.0.2"
    internet_prefix: str = "198.19.0.0/16"
    squid_http_port: int = 3129
    squid_https_port: int = 3130
    squid_admin_port: int = 3128  # squid's own forward-proxy port on 127.0.0.1

    @classmethod
    def random(cls) -> Topology:
        tag = uuid.uuid4().hex[:8]
        return cls(
            tag=tag,
            pod_ns=f"egress-lab-pod-{tag}",
            firewall_ns=f"egress-lab-fw-{tag}",
            internet_ns=f"egress-lab-inet-{tag}",
            pod_if=f"lp{tag}",
            firewall_pod_if=f"lf{tag}",
            firewall_tun=f"tf{tag}",
            internet_tun=f"ti{tag}",
        )


@dataclass(frozen=True)
class Paths:
    """Where the lab keeps its files (a 0755 directory so squid's user can reach its own)."""

    root: Path

    @property
    def squid_dir(self) -> Path:
        return self.root / "squid"

    @property
    def squid_conf(self) -> Path:
        return self.squid_dir / "squid.conf"

    @property
    def squid_access_log(self) -> Path:
        return self.squid_dir / "access.log"

    @property
    def squid_cache_log(self) -> Path:
        return self.squid_dir / "cache.log"

    @property
    def squid_errors(self) -> Path:
        return self.squid_dir / "errors"

    @property
    def squid_ssl_db(self) -> Path:
        return self.squid_dir / "ssl_db"

    @property
    def inspecting_ca(self) -> Path:
        return self.squid_dir / "inspecting-ca.pem"  # cert + key: squid's bumping CA

    @property
    def nft_ruleset(self) -> Path:
        return self.root / "firewall.nft"

    @property
    def nft_log(self) -> Path:
        return self.root / "nft-trace.log"

    @property
    def dnsmasq_conf(self) -> Path:
        return self.root / "dnsmasq.conf"

    @property
    def hosts(self) -> Path:
        return self.root / "hosts"

    @property
    def dnsmasq_log(self) -> Path:
        return self.root / "dnsmasq.log"

    @property
    def trust_store(self) -> Path:
        return self.root / "test-ca.pem"  # the internet's CA: what the probe trusts

    @property
    def served_log(self) -> Path:
        return self.root / "served.jsonl"

    @property
    def internet_conf(self) -> Path:
        return self.root / "internet.json"


# --------------------------------------------------------------------------- default configs


def default_squid_conf(topo: Topology, paths: Paths, policy: Policy) -> str:
    """squid in intercept mode: peek at step 1, then bump, splice or terminate by SNI."""

    def names(items: tuple[str, ...]) -> str:
        return " ".join(items) if items else "none.invalid"

    return f"""\
# egress lab firewall: squid-openssl as Azure Firewall's application-rule proxy
http_port 127.0.0.1:{topo.squid_admin_port}
http_port {topo.squid_http_port} intercept name=intercept_http
https_port {topo.squid_https_port} intercept ssl-bump name=intercept_https \
tls-cert={paths.inspecting_ca} generate-host-certificates=on dynamic_cert_mem_cache_size=4MB
sslcrtd_program {CERTGEN} -s {paths.squid_ssl_db} -M 4MB
sslcrtd_children 2 startup=1 idle=1

acl step1 at_step SslBump1
acl inspect_sni ssl::server_name {names(policy.inspect)}
acl allowed_sni ssl::server_name {names(policy.tls_allowed)}
ssl_bump peek step1
ssl_bump bump inspect_sni
ssl_bump splice allowed_sni
ssl_bump terminate all

# Intercepted TLS is judged by SNI above; plain HTTP by its Host header below.
acl intercepted_tls myportname intercept_https
acl allowed_http dstdomain {names(policy.http_allowed)}
acl default_action src all
http_access allow intercepted_tls
http_access allow allowed_http
deny_info 470:ERR_AZFW_DENY default_action
http_access deny default_action

{squid_runtime_conf(paths)}"""


def squid_runtime_conf(paths: Paths) -> str:
    """Where this lab's squid keeps its files, logs and identity.

    Appended to a caller's squid.conf (e.g. a compiler's), it makes that squid run here next to
    other labs and write the access log :mod:`lab_logs` reads; squid takes the last value of a
    single-valued directive, and ``access_log`` lines add logs.
    """
    return f"""# egress lab runtime: files, logs and identity of this lab's squid
tls_outgoing_options cafile={paths.trust_store}
logformat egress_lab {SQUID_LOGFORMAT}
access_log stdio:{paths.squid_access_log} egress_lab
cache_log {paths.squid_cache_log}
cache_store_log none
pid_filename {paths.squid_dir}/squid.pid
coredump_dir {paths.squid_dir}
error_directory {paths.squid_errors}
cache_effective_user proxy
dns_nameservers 127.0.0.1
visible_hostname egress-lab-firewall
cache deny all
pinger_enable off
logfile_rotate 0
connect_timeout 3 seconds
shutdown_lifetime 0 seconds
"""


def default_ruleset(topo: Topology, policy: Policy) -> str:
    """Interception of 80/443, network rules with counters and a default drop."""
    rules = "\n".join(
        f'    {match} counter accept comment "{comment}"' for comment, match in policy.network_rules
    )
    return f"""\
table inet egress_lab {{
  chain intercept {{
    type nat hook prerouting priority dstnat; policy accept;
    iifname "{topo.firewall_pod_if}" tcp dport 80 counter redirect to :{topo.squid_http_port} \
comment "app/intercept-http"
    iifname "{topo.firewall_pod_if}" tcp dport 443 counter redirect to :{topo.squid_https_port} \
comment "app/intercept-https"
  }}
  chain forward {{
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
{rules}
    counter drop comment "default/deny"
  }}
}}
"""


def trace_ruleset(topo: Topology) -> str:
    """Its own table, loaded after any rule set: trace each new flow from the pod (the nft log)."""
    return f"""\
table inet egress_lab_trace {{
  chain trace {{
    type filter hook prerouting priority -150; policy accept;
    iifname "{topo.firewall_pod_if}" ct state new meta nftrace set 1
  }}
}}
"""


def default_dnsmasq_conf(topo: Topology, paths: Paths) -> str:
    """The DNS proxy: answers from the hosts file, NXDOMAIN for the rest, forwards nothing."""
    return f"""\
no-resolv
no-hosts
no-poll
addn-hosts={paths.hosts}
local=/#/
listen-address={topo.firewall_ip},127.0.0.1
bind-interfaces
{dnsmasq_runtime_conf(paths)}"""


def dnsmasq_runtime_conf(paths: Paths) -> str:
    """This lab's dnsmasq log and pid file; append to a caller's dnsmasq.conf."""
    return f"""\
user=root
log-queries=extra
log-facility={paths.dnsmasq_log}
pid-file={paths.root}/dnsmasq.pid
"""


def default_hosts(names: dict[str, str]) -> str:
    return "".join(f"{address} {name}\n" for name, address in sorted(names.items()))


def internet_ruleset(hosts: tuple[Host, ...]) -> str:
    """The internet's own fates: black holes, dead hosts, canary servers on every port."""
    lines = []
    for host in hosts:
        if host.fate == "blackhole":
            lines.append(f"    ip daddr {host.address} drop")
        elif host.fate == "down":  # what the last router says when a host does not answer ARP
            lines.append(f"    ip daddr {host.address} reject with icmp type host-unreachable")
    redirects = [
        f"    ip daddr {h.address} tcp dport != {port} dnat ip to {h.address}:{port}"
        for h in hosts
        if h.every_port and h.tcp
        for port in [next(iter(h.tcp))]
    ]
    return f"""\
table inet egress_lab_internet {{
  chain input {{
    type filter hook input priority filter; policy accept;
{chr(10).join(lines)}
  }}
  chain every_port {{
    type nat hook prerouting priority dstnat; policy accept;
{chr(10).join(redirects)}
  }}
}}
"""

"""A loopback HTTPS ARM + Entra token emulator for the Microsoft.Network resources apply uses."""

from __future__ import annotations

import copy
import json
import re
import ssl
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

from .handler import handler_for
from .store import ArmError, Store, new_etag, rg_id

API_VERSION = "2026-03-01"
WRITE_METHODS = frozenset({"PUT", "PATCH", "DELETE", "POST"})
_SEG = r"([^/]+)"
_RG = rf"/subscriptions/{_SEG}/resourceGroups/{_SEG}/providers/Microsoft\.Network"

# (regex, resource kind); the kind also names the RBAC action prefix.
ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"^{_RG}/firewallPolicies$", re.I), "policy-list"),
    (re.compile(rf"^{_RG}/firewallPolicies/{_SEG}$", re.I), "policy"),
    (re.compile(rf"^{_RG}/firewallPolicies/{_SEG}/ruleCollectionGroups$", re.I), "rcg-list"),
    (re.compile(rf"^{_RG}/firewallPolicies/{_SEG}/ruleCollectionGroups/{_SEG}$", re.I), "rcg"),
    (re.compile(rf"^{_RG}/firewallPolicies/{_SEG}/kubeSelectorGroups$", re.I), "ksg-list"),
    (re.compile(rf"^{_RG}/firewallPolicies/{_SEG}/kubeSelectorGroups/{_SEG}$", re.I), "ksg"),
    (re.compile(rf"^{_RG}/routeTables/{_SEG}$", re.I), "table"),
    (re.compile(rf"^{_RG}/routeTables/{_SEG}/routes$", re.I), "route-list"),
    (re.compile(rf"^{_RG}/routeTables/{_SEG}/routes/{_SEG}$", re.I), "route"),
    (re.compile(rf"^{_RG}/virtualNetworks/{_SEG}$", re.I), "vnet"),
    (re.compile(rf"^{_RG}/virtualNetworks/{_SEG}/subnets/{_SEG}$", re.I), "subnet"),
]
ACTION_TYPES = {
    "policy-list": "firewallPolicies",
    "policy": "firewallPolicies",
    "rcg-list": "firewallPolicies/ruleCollectionGroups",
    "rcg": "firewallPolicies/ruleCollectionGroups",
    "ksg-list": "firewallPolicies/kubeSelectorGroups",
    "ksg": "firewallPolicies/kubeSelectorGroups",
    "table": "routeTables",
    "route-list": "routeTables/routes",
    "route": "routeTables/routes",
    "vnet": "virtualNetworks",
    "subnet": "virtualNetworks/subnets",
}
RESOURCE_TYPES = {
    "policy": "Microsoft.Network/firewallPolicies",
    "rcg": "Microsoft.Network/firewallPolicies/ruleCollectionGroups",
    "ksg": "Microsoft.Network/firewallPolicies/kubeSelectorGroups",
    "table": "Microsoft.Network/routeTables",
    "route": "Microsoft.Network/routeTables/routes",
    "vnet": "Microsoft.Network/virtualNetworks",
    "subnet": "Microsoft.Network/virtualNetworks/subnets",
}
RULE_LIST_DEFAULTS = {
    "ApplicationRule": (
        "sourceAddresses",
        "sourceIpGroups",
        "targetFqdns",
        "targetUrls",
        "fqdnTags",
        "webCategories",
        "destinationAddresses",
        "httpHeadersToInsert",
    ),
    "NetworkRule": (
        "sourceAddresses",
        "sourceIpGroups",
        "destinationAddresses",
        "destinationIpGroups",
        "destinationFqdns",
        "destinationPorts",
    ),
    "NatRule": ("sourceAddresses", "sourceIpGroups", "destinationAddresses", "destinationPorts"),
}


@dataclass
class Fault:
    """Respond to the next `times` matching requests with a fault instead of the real answer.

    kind: "status" (send `status`, `headers`, `body`), "drop" (close the connection before
    doing anything) or "drop_after" (do the work, then close without answering).
    """

    method: str
    path_contains: str
    kind: str = "status"
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    times: int = 1


@dataclass
class Interpose:
    """Run `action` when a matching write arrives, before ARM evaluates it.

    It models a change by someone else that lands after the client's last read and before its
    write reaches Azure: the narrowest window, which only a conditional request closes.
    """

    method: str
    path_contains: str
    action: Callable[[], None]
    times: int = 1


@dataclass
class Logged:
    method: str
    path: str
    status: int  # 0 when the connection was dropped
    at: float
    conditions: dict[str, str] = field(default_factory=dict)  # If-Match / If-None-Match sent


class ArmEmulator:
    """Start with `with ArmEmulator(tmp_path) as arm:`; `arm.url`, `arm.ca_path`, `arm.writes`."""

    def __init__(
        self,
        workdir: Path,
        *,
        lro_polls: int = 2,
        lro_seconds: float = 5.0,
        lro_retry_after: str = "0",
        page_size: int = 2,
        latency: Callable[[], float] | None = None,
        tenant: str = "tenant-1",
    ) -> None:
        self.store = Store()
        self.lro_polls, self.lro_seconds, self.lro_retry_after = (
            lro_polls,
            lro_seconds,
            lro_retry_after,
        )
        self.page_size = page_size
        self.conflict_retry_after: str | None = "1"  # Retry-After on 409 (None: no header)
        self.latency = latency
        self.tenant = tenant
        self.faults: list[Fault] = []
        self.interposed: list[Interpose] = []
        self.denied_actions: set[str] = set()
        self.foreign_subscriptions: set[str] = set()  # exist, but in another tenant
        self.failing_writes: list[str] = []  # path substrings: the next such LRO ends Failed
        self.log: list[Logged] = []
        self.tokens: set[str] = set()
        # managed cluster id (lower case) -> outboundNetworkDependenciesEndpoints categories
        self.aks_endpoints: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        ca = trustme.CA()
        self.ca_path = workdir / "arm-emulator-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(self))
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ArmEmulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- inspection -------------------------------------------------------------------
    @property
    def writes(self) -> int:
        return sum(1 for e in self.log if e.method in WRITE_METHODS and "/subscriptions/" in e.path)

    def count_by_method(self) -> Counter[str]:
        return Counter(e.method for e in self.log if "/subscriptions/" in e.path)

    def write_log(self) -> list[str]:
        return [
            f"{e.method} {e.path}"
            for e in self.log
            if e.method in WRITE_METHODS and "/subscriptions/" in e.path
        ]

    def accepted_writes(self) -> list[str]:
        """Writes ARM carried out (2xx); a write refused with 412 or 409 changed nothing."""
        return [
            f"{e.method} {e.path}"
            for e in self.log
            if e.method in WRITE_METHODS and "/subscriptions/" in e.path and 200 <= e.status < 300
        ]

    def reset_log(self) -> None:
        with self._lock:
            self.log.clear()

    def resource(self, rid: str) -> dict[str, Any] | None:
        """The resource as a GET would return it (or None)."""
        kind, groups = _match(rid)
        try:
            return self._compose(kind, rid, groups)
        except ArmError:
            return None

    # --- seeding (no log, no LRO) -----------------------------------------------------
    def add_resource_group(self, sub: str, rg: str) -> None:
        self.store.add_resource_group(sub, rg)

    def seed(self, rid: str, body: dict[str, Any]) -> None:
        """Create or replace a resource directly, as if written long ago."""
        kind, groups = _match(rid)
        self._write(kind, rid, groups, copy.deepcopy(body), seeding=True)

    # --- request handling -------------------------------------------------------------
    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if (
                    fault.times > 0
                    and fault.method in (method, "*")
                    and fault.path_contains in path
                ):
                    fault.times -= 1
                    return fault
        return None

    def take_interposed(self, method: str, path: str) -> Interpose | None:
        with self._lock:
            for hook in self.interposed:
                if hook.times > 0 and hook.method == method and hook.path_contains in path:
                    hook.times -= 1
                    return hook
        return None

    def record(
        self, method: str, path: str, status: int, conditions: dict[str, str] | None = None
    ) -> None:
        with self._lock:
            self.log.append(Logged(method, path, status, time.monotonic(), conditions or {}))

    def handle_arm(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: dict[str, Any] | None,
        conditions: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        op_match = re.match(
            rf"^/subscriptions/{_SEG}/providers/Microsoft\.Network/locations/{_SEG}/"
            rf"(operations|operationResults)/{_SEG}$",
            path,
            re.I,
        )
        if op_match:
            return self._operation(op_match.group(3).lower(), op_match.group(4))
        aks = _AKS_ENDPOINTS.match(path)
        if aks and method == "GET":
            return 200, {}, self._aks_endpoints(path, aks.groups(), query)
        kind, groups = _match(path)
        sub, rg = groups[0], groups[1]
        if sub.lower() in self.foreign_subscriptions:
            raise ArmError(
                401,
                "InvalidAuthenticationTokenTenant",
                f"The access token is from the wrong issuer '{self.url}/{self.tenant}/'. It must "
                f"match the tenant associated with subscription '{sub}'.",
            )
        if sub.lower() not in self.store.subscriptions:
            raise ArmError(
                404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found."
            )
        self._authorize(kind, method, path, body)
        if rg_id(sub, rg).lower() not in self.store.resource_groups:
            raise ArmError(
                404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found."
            )
        if method == "GET":
            if kind.endswith("-list"):
                return 200, {}, self._list(kind, path, query)
            return 200, {}, self._compose(kind, path, groups)
        hook = self.take_interposed(method, path)
        if hook is not None:
            hook.action()
        with self.store.lock:  # the precondition and the write are one step, as in ARM
            self._refuse_if_afc_managed(kind, path, query)
            _check_conditions(self.store.get(path), conditions or {})
            return self._change(method, kind, path, groups, body)

    def _change(
        self,
        method: str,
        kind: str,
        path: str,
        groups: tuple[str, ...],
        body: dict[str, Any] | None,
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        if method == "PUT" and kind in RESOURCE_TYPES and body is not None:
            return self._put(kind, path, groups, body)
        if method == "PATCH" and kind == "table" and body is not None:
            doc = self.store.get(path)
            if doc is None:
                raise _not_found(kind, path)
            doc["tags"] = body.get("tags", {})
            doc["etag"] = new_etag()
            self.store.put(path, doc)
            return 200, {}, self._compose(kind, path, groups)
        if method == "DELETE" and kind in RESOURCE_TYPES:
            return self._delete(kind, path, groups)
        raise ArmError(405, "MethodNotAllowed", f"{method} is not supported on {path}.")

    def add_managed_cluster(self, sub: str, rg: str, name: str, categories: list[Any]) -> str:
        """Seed a cluster's outboundNetworkDependenciesEndpoints (the RP's documented shape)."""
        rid = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/"
        rid += f"managedClusters/{name}"
        self.aks_endpoints[rid.lower()] = copy.deepcopy(categories)
        return rid

    def _aks_endpoints(
        self, path: str, groups: tuple[str, ...], query: dict[str, list[str]]
    ) -> dict[str, Any]:
        """GET .../managedClusters/{name}/outboundNetworkDependenciesEndpoints, paged."""
        sub, rg, name = groups
        if sub.lower() not in self.store.subscriptions:
            raise ArmError(
                404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found."
            )
        action = (
            "Microsoft.ContainerService/managedClusters/outboundNetworkDependenciesEndpoints/read"
        )
        if action in self.denied_actions:
            raise ArmError(
                403,
                "AuthorizationFailed",
                f"The client 'app-1' with object id '00000000-0000-0000-0000-000000000001' does "
                f"not have authorization to perform action '{action}' over scope '{path}' or the "
                "scope is invalid. If access was recently granted, please refresh your "
                "credentials.",
            )
        cluster = path.rsplit("/", 1)[0].lower()
        if cluster not in self.aks_endpoints:
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.ContainerService/managedClusters/{name}' under resource "
                f"group '{rg}' was not found.",
            )
        items = self.aks_endpoints[cluster]
        start = int(query.get("$skipToken", ["0"])[0])
        result: dict[str, Any] = {"value": items[start : start + self.page_size]}
        if start + self.page_size < len(items):
            version = query.get("api-version", [""])[0]
            result["nextLink"] = (
                f"{self.url}{path}?api-version={version}&$skipToken={start + self.page_size}"
            )
        return result

    def _refuse_if_afc_managed(self, kind: str, path: str, query: dict[str, list[str]]) -> None:
        """A policy Azure Firewall for Containers manages is read-only to other writers.

        Writers that are AFC send ?afcManagedSync=true. The error code is this emulator's own
        (Azure documents the behaviour, not the code); egress refuses before it gets here.
        """
        if kind not in ("policy", "rcg", "ksg"):
            return
        policy_path = re.split(r"/(?:ruleCollectionGroups|kubeSelectorGroups)/", path, flags=re.I)
        policy = self.store.get(policy_path[0])
        managed = bool(((policy or {}).get("properties") or {}).get("afcManaged"))
        if managed and query.get("afcManagedSync") != ["true"]:
            raise ArmError(
                400,
                "FirewallPolicyManagedByAfc",
                f"Firewall policy '{policy_path[0].rsplit('/', 1)[1]}' is managed by Azure "
                "Firewall for Containers and is read-only.",
            )

    def _authorize(self, kind: str, method: str, path: str, body: dict[str, Any] | None) -> None:
        verb = {"GET": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}[method]
        needed = [f"Microsoft.Network/{ACTION_TYPES[kind]}/{verb}"]
        route_table = ((body or {}).get("properties") or {}).get("routeTable")
        if kind == "subnet" and method == "PUT" and route_table:
            needed.append("Microsoft.Network/routeTables/join/action")
        for action in needed:
            if action in self.denied_actions:
                raise ArmError(
                    403,
                    "AuthorizationFailed",
                    f"The client 'app-1' with object id '00000000-0000-0000-0000-000000000001' "
                    f"does not have authorization to perform action '{action}' over scope "
                    f"'{path}' or the scope is invalid. If access was recently granted, "
                    f"please refresh your credentials.",
                )

    def _compose(self, kind: str, path: str, groups: tuple[str, ...]) -> dict[str, Any]:
        doc = self.store.get(path)
        if doc is None:
            raise _not_found(kind, path)
        rid = doc["id"]
        if kind == "policy":
            doc["properties"]["ruleCollectionGroups"] = [
                {"id": g["id"]} for g in self.store.children(rid, "ruleCollectionGroups")
            ]
        elif kind == "table":
            doc["properties"]["routes"] = self.store.children(rid, "routes")
            doc["properties"]["subnets"] = [
                {"id": s["id"]}
                for s in self._all_subnets()
                if ((s["properties"].get("routeTable") or {}).get("id") or "").lower()
                == rid.lower()
            ]
        elif kind == "vnet":
            doc["properties"]["subnets"] = self.store.children(rid, "subnets")
        return doc

    def _all_subnets(self) -> list[dict[str, Any]]:
        with self.store.lock:
            return [
                copy.deepcopy(d)
                for d in self.store.resources.values()
                if d.get("type") == RESOURCE_TYPES["subnet"]
            ]

    def _list(self, kind: str, path: str, query: dict[str, list[str]]) -> dict[str, Any]:
        parent = path.rsplit("/", 1)[0]
        segment = path.rsplit("/", 1)[1]
        if kind == "policy-list":
            items = [
                self._compose("policy", d["id"], ()) for d in self.store.children(parent, segment)
            ]
        else:
            if self.store.get(parent) is None:
                raise _not_found(kind.removesuffix("-list"), parent)
            items = self.store.children(parent, segment)
        start = int(query.get("$skipToken", ["0"])[0])
        page = items[start : start + self.page_size]
        result: dict[str, Any] = {"value": page}
        if start + self.page_size < len(items):
            result["nextLink"] = (
                f"{self.url}{path}?api-version={API_VERSION}&$skipToken={start + self.page_size}"
            )
        return result

    def _put(
        self, kind: str, path: str, groups: tuple[str, ...], body: dict[str, Any]
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        policy = None
        if kind in ("rcg", "ksg"):  # one writer per firewall policy, children included
            policy = _policy_of(path)
            if self.store.get(policy) is None:
                raise _not_found("policy", policy)
            self._refuse_if_busy(policy)
        existed = self.store.get(path) is not None
        self._write(kind, path, groups, body, seeding=False)
        fails = next((f for f in self.failing_writes if f in path), None)
        if fails is not None:
            self.failing_writes.remove(fails)
        op = self.store.start_operation(
            path,
            policy=policy,
            is_delete=False,
            polls=self.lro_polls,
            seconds=self.lro_seconds,
            fails=fails is not None,
        )
        headers = self._lro_headers(groups[0], op.op_id)
        return (200 if existed else 201), headers, self._compose(kind, path, groups)

    def _refuse_if_busy(self, policy: str) -> None:
        if self.store.policy_busy(policy):
            raise ArmError(
                409,
                "AnotherOperationInProgress",
                f"Another operation on this or dependent resource is in progress: firewall "
                f"policy '{policy.rsplit('/', 1)[1]}' is Updating.",
                {"Retry-After": self.conflict_retry_after} if self.conflict_retry_after else {},
            )

    def _write(
        self, kind: str, path: str, groups: tuple[str, ...], body: dict[str, Any], *, seeding: bool
    ) -> None:
        """Full-replace PUT: the stored resource becomes exactly the body plus read-only fields."""
        props = copy.deepcopy(body.get("properties") or {})
        for read_only in ("provisioningState", "size", "ruleCollectionGroups", "subnets"):
            props.pop(read_only, None)
        if kind == "policy" and not seeding:  # afcManaged is read-only: a PUT keeps it as is
            props.pop("afcManaged", None)
            before = (self.store.get(path) or {}).get("properties") or {}
            if "afcManaged" in before:
                props["afcManaged"] = before["afcManaged"]
        state = "Succeeded" if seeding else "Updating"
        parent_kind = {"rcg": "policy", "ksg": "policy", "route": "table", "subnet": "vnet"}.get(
            kind
        )
        if parent_kind:
            parent = path.rsplit("/", 2)[0]
            if self.store.get(parent) is None:
                raise _not_found(parent_kind, parent)
        if kind == "ksg":
            _validate_kube_selector_group(props)
        if kind == "rcg":
            _validate_rcg(props)
            self._check_selector_references(path, props)
            props["size"] = f"{len(json.dumps(props)) / 1_000_000:.3f} MB"
        if kind == "route":
            _validate_route(props)
        doc: dict[str, Any] = {
            "id": path,
            "name": path.rsplit("/", 1)[1],
            "type": RESOURCE_TYPES[kind],
            "etag": new_etag(),
        }
        if kind in ("policy", "table", "vnet"):
            doc["location"] = body.get("location", "eastus")
            doc["tags"] = body.get("tags", {})
        routes = props.pop("routes", None) if kind == "table" else None
        subnets = props.pop("subnets", None) if kind == "vnet" else None
        if kind == "vnet":
            subnets = (body.get("properties") or {}).get("subnets")
        props["provisioningState"] = state
        doc["properties"] = props
        self.store.put(path, doc)
        if kind == "table":
            for old in self.store.children(path, "routes"):
                self.store.delete(old["id"])
            for route in routes or []:
                self._write("route", f"{path}/routes/{route['name']}", groups, route, seeding=True)
        if kind == "vnet":
            for sub_body in subnets or []:
                sid = f"{path}/subnets/{sub_body['name']}"
                self._write("subnet", sid, groups, sub_body, seeding=True)
        if parent_kind in ("table", "vnet"):
            parent_doc = self.store.get(path.rsplit("/", 2)[0])
            assert parent_doc is not None
            parent_doc["etag"] = new_etag()
            self.store.put(parent_doc["id"], parent_doc)

    def _delete(
        self, kind: str, path: str, groups: tuple[str, ...]
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        policy = None
        if kind in ("rcg", "ksg"):
            policy = _policy_of(path)
            self._refuse_if_busy(policy)
        if self.store.get(path) is None:
            return 204, {}, None
        if kind == "ksg":
            self._refuse_if_referenced(path)
        self.store.delete(path)
        if kind in ("route", "subnet"):
            parent_doc = self.store.get(path.rsplit("/", 2)[0])
            if parent_doc is not None:
                parent_doc["etag"] = new_etag()
                self.store.put(parent_doc["id"], parent_doc)
        op = self.store.start_operation(
            path, policy=policy, is_delete=True, polls=self.lro_polls, seconds=self.lro_seconds
        )
        return 202, self._lro_headers(groups[0], op.op_id), None

    def _selector_references(self, policy: str) -> dict[str, list[str]]:
        """KSG id (lower-cased) -> the groups whose rules use it as sourceKubeSelectorGroups."""
        found: dict[str, list[str]] = {}
        for group in self.store.children(policy, "ruleCollectionGroups"):
            for collection in group["properties"].get("ruleCollections") or []:
                for rule in collection.get("rules") or []:
                    for ref in rule.get("sourceKubeSelectorGroups") or []:
                        found.setdefault(str(ref).lower(), []).append(group["name"])
        return found

    def _check_selector_references(self, path: str, props: dict[str, Any]) -> None:
        """A rule may only name kube selector groups that exist in the same policy."""
        policy = _policy_of(path).lower()
        for collection in props.get("ruleCollections") or []:
            for rule in collection.get("rules") or []:
                for ref in map(str, rule.get("sourceKubeSelectorGroups") or []):
                    if not ref.lower().startswith(policy + "/kubeselectorgroups/") or (
                        self.store.get(ref) is None
                    ):
                        raise ArmError(
                            400,
                            "InvalidResourceReference",
                            f"Rule '{rule.get('name')}' references kube selector group '{ref}', "
                            "which does not exist in this firewall policy.",
                        )

    def _refuse_if_referenced(self, path: str) -> None:
        users = self._selector_references(_policy_of(path)).get(path.lower())
        if users:
            raise ArmError(
                400,
                "KubeSelectorGroupInUse",
                f"Kube selector group '{path.rsplit('/', 1)[1]}' is in use by rule collection "
                f"group(s) {', '.join(sorted(set(users)))} and cannot be deleted.",
            )

    def _lro_headers(self, sub: str, op_id: str) -> dict[str, str]:
        base = f"{self.url}/subscriptions/{sub}/providers/Microsoft.Network/locations/eastus"
        return {
            "Azure-AsyncOperation": f"{base}/operations/{op_id}?api-version={API_VERSION}",
            "Location": f"{base}/operationResults/{op_id}?api-version={API_VERSION}",
            "Retry-After": self.lro_retry_after,
        }

    def _operation(
        self, which: str, op_id: str
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        op = self.store.poll(op_id)
        if op is None:
            raise ArmError(404, "OperationNotFound", f"Operation '{op_id}' was not found.")
        retry = {"Retry-After": self.lro_retry_after}
        if which == "operations":
            body: dict[str, Any] = {"status": op.status}
            if op.status == "Failed":
                body["error"] = {
                    "code": "FirewallPolicyUpdateFailed",
                    "message": "Put on Firewall Policy failed with 1 faulted referenced firewalls.",
                }
            return 200, ({} if op.done else retry), body
        if not op.done:
            return 202, retry, None
        if op.is_delete:
            return 204, {}, None
        kind, groups = _match(self.store.resources[op.target]["id"])
        return 200, {}, self._compose(kind, op.target, groups)

    def issue_token(self) -> dict[str, Any]:
        token = f"emulator-{uuid.uuid4()}"
        with self._lock:
            self.tokens.add(token)
        return {
            "token_type": "Bearer",
            "expires_in": 3600,
            "ext_expires_in": 3600,
            "access_token": token,
        }


_AKS_ENDPOINTS = re.compile(
    rf"^/subscriptions/{_SEG}/resourceGroups/{_SEG}/providers/Microsoft\.ContainerService/"
    rf"managedClusters/{_SEG}/outboundNetworkDependenciesEndpoints$",
    re.I,
)


def _match(path: str) -> tuple[str, tuple[str, ...]]:
    for pattern, kind in ROUTES:
        found = pattern.match(path)
        if found:
            return kind, found.groups()
    raise ArmError(404, "InvalidResourceType", f"No route for {path}.")


def _not_found(kind: str, path: str) -> ArmError:
    rtype = RESOURCE_TYPES.get(kind, kind)
    parts = path.split("/")
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{rtype}/{parts[-1]}' under resource group '{parts[4]}' was not found.",
    )


def _check_conditions(current: dict[str, Any] | None, conditions: dict[str, str]) -> None:
    """RFC 9110 preconditions as ARM applies them to PUT, PATCH and DELETE: 412 when unmet.

    If-Match: * needs the resource to exist; If-Match: <etag> needs that exact current etag
    (a missing resource has none); If-None-Match: * needs the resource to be absent.
    """
    etag = (current or {}).get("etag")
    if_match, if_none_match = conditions.get("If-Match"), conditions.get("If-None-Match")
    failed = ""
    if if_match is not None:
        listed = {tag.strip() for tag in if_match.split(",")}
        if current is None or ("*" not in listed and etag not in listed):
            failed = "If-Match"
    if if_none_match is not None:
        listed = {tag.strip() for tag in if_none_match.split(",")}
        if current is not None and ("*" in listed or etag in listed):
            failed = "If-None-Match"
    if failed:
        raise ArmError(
            412,
            "PreconditionFailed",
            f"The condition specified using HTTP conditional header(s) is not met ({failed}).",
        )


def _policy_of(path: str) -> str:
    """The firewall policy id of a policy child (rule collection group, kube selector group)."""
    return re.split(r"/(?:ruleCollectionGroups|kubeSelectorGroups)/", path, flags=re.I)[0]


SELECTOR_OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})


def _validate_kube_selector_group(props: dict[str, Any]) -> None:
    """podSelector / namespaceSelector are Kubernetes LabelSelectors (matchLabels, expressions)."""
    for key in set(props) - {"podSelector", "namespaceSelector"}:
        raise ArmError(400, "InvalidRequestFormat", f"Unknown kube selector group property {key}.")
    for which in ("podSelector", "namespaceSelector"):
        selector = props.get(which)
        if selector is None:
            continue
        labels = selector.get("matchLabels") or {}
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise ArmError(400, "InvalidRequestFormat", f"{which}.matchLabels must map strings.")
        for expression in selector.get("matchExpressions") or []:
            operator, values = expression.get("operator"), expression.get("values") or []
            if not expression.get("key") or operator not in SELECTOR_OPERATORS:
                raise ArmError(400, "InvalidRequestFormat", f"{which} has an invalid expression.")
            if (operator in ("In", "NotIn")) != bool(values):
                raise ArmError(
                    400,
                    "InvalidRequestFormat",
                    f"{which}: operator {operator} needs values only for In and NotIn.",
                )


def _validate_rcg(props: dict[str, Any]) -> None:
    priority = props.get("priority")
    if not isinstance(priority, int) or not 100 <= priority <= 65000:
        raise ArmError(400, "InvalidRequestFormat", "Rule collection group priority is invalid.")
    for collection in props.get("ruleCollections") or []:
        if "ruleCollectionType" not in collection or "name" not in collection:
            raise ArmError(400, "InvalidRequestFormat", "Rule collection is missing its type.")
        for rule in collection.get("rules") or []:
            rule_type = rule.get("ruleType")
            if rule_type not in RULE_LIST_DEFAULTS:
                raise ArmError(400, "InvalidRequestFormat", f"Unknown ruleType {rule_type!r}.")
            for key in RULE_LIST_DEFAULTS[rule_type]:
                rule.setdefault(key, [])  # ARM returns omitted lists as []
            if rule_type == "ApplicationRule":
                rule.setdefault("terminateTLS", False)


def _validate_route(props: dict[str, Any]) -> None:
    if not props.get("addressPrefix") or not props.get("nextHopType"):
        raise ArmError(400, "InvalidRequestFormat", "A route needs addressPrefix and nextHopType.")
    props.setdefault("hasBgpOverride", False)

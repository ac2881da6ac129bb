"""In-memory ARM resource state for the emulator: resources, etags and long-running operations."""

from __future__ import annotations

import copy
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

NET = "providers/Microsoft.Network"


def new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def rg_id(sub: str, rg: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


class ArmError(Exception):
    """An ARM error response (status + `{"error": {"code", "message"}}`)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


@dataclass
class Operation:
    """One long-running operation: done after `polls_left` status polls or `deadline`."""

    op_id: str
    target: str  # lower-cased id of the resource written
    policy: str | None  # lower-cased firewall policy id, for the one-writer-per-policy rule
    is_delete: bool
    polls_left: int
    deadline: float
    done: bool = False
    status: str = "InProgress"
    fails: bool = False  # ends as Failed (the resource keeps the new body, state Failed)


@dataclass
class Store:
    """Every resource by lower-cased id; children (routes, subnets, groups) are stored alone."""

    resource_groups: set[str] = field(default_factory=set)  # lower-cased rg ids
    subscriptions: set[str] = field(default_factory=set)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, Operation] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def add_resource_group(self, sub: str, rg: str) -> None:
        with self.lock:
            self.subscriptions.add(sub.lower())
            self.resource_groups.add(rg_id(sub, rg).lower())

    def get(self, rid: str) -> dict[str, Any] | None:
        with self.lock:
            doc = self.resources.get(rid.lower())
            return copy.deepcopy(doc) if doc is not None else None

    def put(self, rid: str, doc: dict[str, Any]) -> None:
        with self.lock:
            self.resources[rid.lower()] = doc

    def delete(self, rid: str) -> None:
        with self.lock:
            self.resources.pop(rid.lower(), None)

    def children(self, parent_id: str, segment: str) -> list[dict[str, Any]]:
        prefix = f"{parent_id}/{segment}/".lower()
        with self.lock:
            return [
                copy.deepcopy(doc)
                for rid, doc in sorted(self.resources.items())
                if rid.startswith(prefix) and "/" not in rid[len(prefix) :]
            ]

    # --- operations -------------------------------------------------------------------
    def start_operation(
        self,
        target: str,
        *,
        policy: str | None,
        is_delete: bool,
        polls: int,
        seconds: float,
        fails: bool = False,
    ) -> Operation:
        op = Operation(
            op_id=str(uuid.uuid4()),
            target=target.lower(),
            policy=policy.lower() if policy else None,
            is_delete=is_delete,
            polls_left=polls,
            deadline=time.monotonic() + seconds,
            fails=fails,
        )
        with self.lock:
            self.operations[op.op_id] = op
            if polls <= 0:
                self._finish(op)
        return op

    def policy_busy(self, policy_id: str) -> bool:
        with self.lock:
            self._expire()
            return any(
                op.policy == policy_id.lower() and not op.done for op in self.operations.values()
            )

    def poll(self, op_id: str) -> Operation | None:
        with self.lock:
            op = self.operations.get(op_id)
            if op is None:
                return None
            if not op.done:
                op.polls_left -= 1
                if op.polls_left <= 0:
                    self._finish(op)
            self._expire()
            return op

    def _expire(self) -> None:
        now = time.monotonic()
        for op in self.operations.values():
            if not op.done and now >= op.deadline:
                self._finish(op)

    def _finish(self, op: Operation) -> None:
        op.done = True
        op.status = "Failed" if op.fails else "Succeeded"
        doc = self.resources.get(op.target)
        if doc is not None and not op.is_delete:
            doc.setdefault("properties", {})["provisioningState"] = op.status
        if op.policy:
            policy = self.resources.get(op.policy)
            if policy is not None:
                policy["properties"]["provisioningState"] = "Succeeded"

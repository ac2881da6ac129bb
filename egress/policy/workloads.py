"""Per-workload sources: Kubernetes namespace and pod label selectors a policy entry names."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_K8S_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"


def _labels(labels: dict[str, str], what: str) -> dict[str, str]:
    for key, value in labels.items():
        if not re.match(_LABEL_KEY, key):
            raise ValueError(f"{what} key '{key}' is not a Kubernetes label key")
        if not re.match(_LABEL_VALUE, value):
            raise ValueError(f"{what} value '{value}' of '{key}' is not a Kubernetes label value")
    return dict(sorted(labels.items()))


class Workload(BaseModel):
    """Pods carrying pod_labels in namespaces carrying namespace_labels (both ANDed)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    name: str = Field(pattern=_K8S_NAME, max_length=40)
    namespace_labels: dict[str, str] = {}
    pod_labels: dict[str, str] = {}

    @field_validator("namespace_labels")
    @classmethod
    def _namespace(cls, labels: dict[str, str]) -> dict[str, str]:
        return _labels(labels, "namespace_labels")

    @field_validator("pod_labels")
    @classmethod
    def _pods(cls, labels: dict[str, str]) -> dict[str, str]:
        return _labels(labels, "pod_labels")

    @model_validator(mode="after")
    def _selects_something(self) -> Workload:
        if not self.namespace_labels and not self.pod_labels:
            raise ValueError(
                f"workload '{self.name}' has no labels and would select every pod; give "
                "namespace_labels or pod_labels"
            )
        return self


def check_workload_references(workloads: Iterable[Workload], allows: Iterable[Any]) -> None:
    """Names are unique and every allow entry names only defined workloads."""
    defined = Counter(w.name for w in workloads)
    dupes = sorted(name for name, count in defined.items() if count > 1)
    if dupes:
        raise ValueError(f"workloads has duplicate names: {', '.join(dupes)}; rename one")
    for index, allow in enumerate(allows):
        for name in allow.workloads:
            if name not in defined:
                known = ", ".join(sorted(defined)) or "none defined"
                raise ValueError(
                    f"allow[{index}] names workload '{name}' that is not under workloads "
                    f"({known}); define it or remove it"
                )

"""Deliver a run's metrics: push to a Pushgateway (batch-job pattern) or write a textfile.

Both are boundaries: network and file errors become :class:`MetricsError` with one sentence
naming the gateway or file, so a delivery failure is never a traceback and never hides the
run's own verdict (the CLI reports both).
"""

from __future__ import annotations

import urllib.error
from pathlib import Path
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, push_to_gateway, write_to_textfile

from egress.errors import MetricsError, UsageError
from egress.metrics.registry import JOB, grouping_key, run_registry
from egress.results import RunReport

PUSH_TIMEOUT_SECONDS = 10.0


def check_gateway_url(url: str) -> str:
    """Validate --pushgateway before the run, so a typo fails fast with exit 2."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"--pushgateway {url!r} is not an http(s) URL; give e.g. "
            "http://prometheus-pushgateway.monitoring:9091."
        )
    return url


def push(registry: CollectorRegistry, url: str, group: dict[str, str]) -> None:
    """Replace the group's metrics on the gateway (PUT), so stale series never linger."""
    try:
        push_to_gateway(
            url, job=JOB, registry=registry, grouping_key=group, timeout=PUSH_TIMEOUT_SECONDS
        )
    except urllib.error.HTTPError as exc:
        raise MetricsError(
            f"the Pushgateway at {url} refused the metrics (HTTP {exc.code} {exc.reason}); "
            "check the URL and that it accepts pushes."
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MetricsError(
            f"cannot push metrics to the Pushgateway at {url} ({reason}); check the URL and "
            "that the gateway is reachable from the pod."
        ) from exc


def write_textfile(registry: CollectorRegistry, path: Path) -> None:
    """Atomically write the text exposition format (node_exporter's textfile collector)."""
    try:
        write_to_textfile(str(path), registry)
    except OSError as exc:
        raise MetricsError(
            f"{path}: cannot write the metrics file ({exc.strerror}); check the directory "
            "exists and is writable."
        ) from exc


def deliver(
    run: RunReport, *, pushgateway: str | None, textfile: Path | None, strict: bool = False
) -> list[str]:
    """Push and/or write the run's metrics; returns where they went, for the summary line."""
    if pushgateway is None and textfile is None:
        return []
    registry = run_registry(run, strict=strict)
    sent: list[str] = []
    if pushgateway is not None:
        push(registry, pushgateway, grouping_key(run))
        sent.append(pushgateway)
    if textfile is not None:
        write_textfile(registry, textfile)
        sent.append(str(textfile))
    return sent

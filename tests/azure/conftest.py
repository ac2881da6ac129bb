"""Fixtures: a running ARM emulator with the hub seeded, an SDK client and a CLI runner."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.mgmt.network import NetworkManagementClient
from emulator import ArmEmulator
from typer.testing import CliRunner

from egress.azure.cloud import network_client

from azure_hub import Cli, connection, seed_hub


@pytest.fixture
def arm(tmp_path: Path) -> Iterator[ArmEmulator]:
    with ArmEmulator(tmp_path) as emulator:
        seed_hub(emulator)
        yield emulator


@pytest.fixture
def client(arm: ArmEmulator) -> Iterator[NetworkManagementClient]:
    conn = connection(arm)
    with network_client(conn) as sdk_client:
        yield sdk_client
    assert conn.credential is not None
    conn.credential.close()  # type: ignore[attr-defined]
    # Sockets urllib3 abandons after a dropped connection are reclaimed here, so a leak is
    # charged to the test that caused it (the drop tests expect and allow it), not the next one.
    gc.collect()


@pytest.fixture
def cli(arm: ArmEmulator, monkeypatch: pytest.MonkeyPatch) -> Cli:
    # DefaultAzureCredential limited to its environment credential (no IMDS, no az CLI).
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
    monkeypatch.setenv("AZURE_TENANT_ID", "tenant-1")
    monkeypatch.setenv("AZURE_CLIENT_ID", "client-1")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "secret-1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(arm.ca_path))
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("NO_COLOR", "1")
    return Cli(arm, CliRunner())

"""Fixtures of the firewall lab: one running lab per session (see firewall_lab.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from firewall_lab import Lab, lab_unavailable, running_lab


@pytest.fixture(scope="session")
def firewall_lab() -> Iterator[Lab]:
    """The lab with its default policy, shared by every test of the session."""
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    with running_lab() as lab:
        yield lab

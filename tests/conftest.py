"""Shared fixtures: paths to ../shared/data and a guard against silently skipped suites."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BANDIT_ROUTER_SHARED_DATA", ROOT.parent / "shared" / "data"))
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def shared_file(relative: str) -> Path:
    """Path of a file in ../shared/data; skip locally, fail on CI, if it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        if ON_CI:
            pytest.fail(f"{path} is missing: CI must run with ../shared/data beside the project.")
        pytest.skip(f"{path} is absent (the shared data folder is not beside the project)")
    return path


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        if ON_CI:
            pytest.fail(f"{SHARED_DATA} is missing on CI.")
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


def pytest_collection_finish(session: pytest.Session) -> None:
    if not session.items:
        raise pytest.UsageError("no tests were collected: the suite must never pass empty.")

"""Shared fixtures: the wirelens binary under test."""

import os
import shutil

import pytest


@pytest.fixture(scope="session")
def wirelens_bin() -> str:
    path = os.environ.get("WIRELENS_BIN") or shutil.which("wirelens")
    if not path or not os.path.exists(path):
        # Never skip silently: a missing binary is a failure.
        pytest.fail("WIRELENS_BIN is not set and no `wirelens` is on PATH; run through scripts/test")
    return path


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

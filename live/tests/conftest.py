"""Fixtures of the live app's tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _forget_the_universe() -> None:
    """The instrument universe is kept in the process for a minute; each test has its own instruments."""
    from live import board

    board._universe_local = None

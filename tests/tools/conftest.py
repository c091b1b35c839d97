"""Fixtures for the command-line tool tests."""
from __future__ import annotations

import pytest
import tools_helpers  # noqa: F401  (puts the fake cluster on sys.path)
from fake_cluster import ThreadedCluster


@pytest.fixture
def threaded():
    """A one-node fake cluster on its own loop in a thread; `.cluster` is the FakeCluster."""
    server = ThreadedCluster(1)
    with server:
        yield server

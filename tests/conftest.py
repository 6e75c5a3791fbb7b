from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import ScriptedServer


@pytest.fixture
def http_server() -> Iterator[ScriptedServer]:
    """A scripted HTTP server on 127.0.0.1, stopped after the test."""
    with ScriptedServer().running() as server:
        yield server

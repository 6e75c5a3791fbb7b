from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.functional.harness import Service, service_config, start_service, stop_service


@pytest.fixture
def service(tmp_path) -> Iterator[Service]:
    """The whole service in-process, with a dummy account for project alpha."""
    running = start_service(service_config(tmp_path))
    try:
        running.add_account("alpha", "dummy")
        yield running
    finally:
        stop_service(running)

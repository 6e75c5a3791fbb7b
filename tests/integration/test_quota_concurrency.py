"""Quotas hold under concurrency, through a real HTTP server, on SQLite,
PostgreSQL and MariaDB: no two creates can take the last free unit."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from services.api.server import ApiServer, listen
from services.common import quotas
from services.common.db.models import Node, ProjectQuota
from services.common.db.session import session_scope
from tests.functional.harness import Service, service_config, start_service, stop_service
from tests.helpers import wait_for
from tests.integration.services import mariadb_database, postgres_database

pytestmark = pytest.mark.integration

LIMIT = 10


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def served(request, tmp_path: Path) -> Iterator[tuple[Service, str]]:
    """The whole service with one API server (16 threads) on 127.0.0.1."""
    with ExitStack() as stack:
        database = None
        if request.param == "postgresql":
            database = stack.enter_context(postgres_database())
        if request.param == "mariadb":
            database = stack.enter_context(mariadb_database())
        service = start_service(service_config(tmp_path, database))
        stack.callback(stop_service, service)
        service.add_account("alpha", "dummy")
        with session_scope(service.context.sessions) as session:
            quotas.set_limits(session, service.projects["alpha"], {"nodes": LIMIT})
        sock = listen("127.0.0.1:0")
        server = ApiServer(service.context, sock)
        server.start()
        stack.callback(server.stop)
        yield service, f"http://127.0.0.1:{sock.getsockname()[1]}"


def used_and_live(service: Service) -> tuple[int, int]:
    project_id = service.projects["alpha"]
    with session_scope(service.context.sessions) as session:
        used = session.scalar(
            select(ProjectQuota.used_nodes).where(ProjectQuota.project_id == project_id)
        )
        live = session.scalar(
            select(func.count())
            .select_from(Node)
            .where(Node.project_id == project_id, Node.deleted_at.is_(None))
        )
    return int(used or 0), int(live or 0)


def test_sixty_concurrent_creates_accept_exactly_the_quota(served):
    service, url = served
    headers = {"Authorization": f"Bearer {service.keys['member']}"}
    start = threading.Barrier(60)

    def create(index: int) -> int:
        start.wait()
        return requests.post(
            f"{url}/v1/nodes",
            json={"name": f"n{index}", "image": "ubuntu"},
            headers=headers,
            timeout=60,
        ).status_code

    with ThreadPoolExecutor(60) as pool:
        statuses = list(pool.map(create, range(60)))
    assert statuses.count(202) == LIMIT, statuses
    assert statuses.count(403) == 60 - LIMIT
    assert used_and_live(service) == (LIMIT, LIMIT)


def test_with_deletes_mixed_in_usage_never_exceeds_the_limit(served):
    service, url = served
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {service.keys['member']}"
    first = [service.create_node(f"first{index}", key="member")["id"] for index in range(LIMIT)]
    highest = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            highest[0] = max(highest[0], used_and_live(service)[0])
            stop.wait(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:

        def churn(index: int) -> int:
            if index % 2:
                node_id = first[index // 2 % LIMIT]
                r = session.delete(f"{url}/v1/nodes/{node_id}", timeout=60)
                return r.status_code, r.text
            r = session.post(
                f"{url}/v1/nodes", json={"name": f"c{index}", "image": "ubuntu"}, timeout=60
            )
            return r.status_code, r.text

        with ThreadPoolExecutor(60) as pool:
            statuses = list(pool.map(churn, range(60)))
        # 404: a delete that came after another one had finished.
        assert set(s for s, _ in statuses) <= {202, 403, 404}, statuses

        def settled() -> bool:
            with session_scope(service.context.sessions) as db:
                busy = db.scalar(
                    select(func.count()).select_from(Node).where(Node.task.is_not(None))
                )
            return busy == 0

        wait_for(settled, timeout=60, what="every node to settle")
    finally:
        stop.set()
        sampler.join()
    used, live = used_and_live(service)
    assert highest[0] <= LIMIT
    assert used == live <= LIMIT
    with session_scope(service.context.sessions) as db:
        assert quotas.reconcile(db, service.projects["alpha"]) == {}

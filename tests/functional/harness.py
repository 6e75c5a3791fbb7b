"""The whole service in one process: SQLite + memory://, API called as WSGI."""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy import select
from webob import Request

from services.api.server import ApiServer, listen
from services.api.wsgi import make_app
from services.cli.manage import main as manage_main
from services.common import bootstrap
from services.common.config import Config
from services.common.context import ServiceContext, build_context
from services.common.crypto import generate_key
from services.common.db import migrate
from services.common.db.models import Account
from services.common.db.session import session_scope
from services.common.messaging import QUEUES, connect
from services.common.runner import Component
from services.scheduler.service import scheduler_components
from services.worker.service import worker_components
from tests.helpers import wait_for


def service_config(
    tmp_path: Path, database_url: str | None = None, transport_url: str = "memory://"
) -> Config:
    return Config().replace(
        database={"connection": database_url or f"sqlite:///{tmp_path}/overcast.sqlite"},
        messaging={"transport_url": transport_url, "polling_interval": 0.001, "max_deliveries": 3},
        worker={
            "poll_interval": 0.05,
            "provider_backoff": 0.01,
            "provider_retries": 3,
            "catalog_sync_interval": 3600.0,
            "pool_size": 4,
            # Dummy nodes have no sshd: their deployments fail within seconds.
            "deploy_connect_attempts": 3,
            "deploy_connect_timeout": 1.0,
        },
        security={"encryption_key": generate_key()},
        service={"heartbeat_interval": 0.5, "state_dir": str(tmp_path)},
        # Tests that refresh prices say so, against their own price servers.
        pricing={"cache_file": str(tmp_path / "pricing.json"), "refresh_interval": 0},
    )


def purge_queues(context: ServiceContext) -> None:
    with connect(context.config.messaging) as connection:
        channel = connection.default_channel
        for queue in QUEUES.values():
            queue(channel).declare()
            queue(channel).purge()


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def error(self) -> dict[str, Any]:
        return self.body["error"]  # type: ignore[no-any-return]


@dataclass
class Service:
    context: ServiceContext
    components: list[Component]
    keys: dict[str, str] = field(default_factory=dict)
    projects: dict[str, str] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.app = make_app(self.context)

    def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = "admin",
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        app: Any = None,
    ) -> Answer:
        request = Request.blank(path, method=method)
        if key is not None:
            request.headers["Authorization"] = f"Bearer {self.keys.get(key, key)}"
        if body is not None:
            raw = json.dumps(body).encode()
        if raw is not None:
            request.body = raw
            request.content_type = "application/json"
        request.headers.update(headers or {})
        response = request.get_response(app or self.app)
        parsed: Any = response.body or None
        if parsed and response.content_type == "application/json":
            with suppress(ValueError):  # an object stored as JSON may be anything
                parsed = json.loads(response.body)
        return Answer(response.status_int, parsed, dict(response.headers))

    def add_account(
        self,
        project: str,
        name: str,
        provider: str = "dummy",
        credentials: dict[str, Any] | None = None,
        **options: Any,
    ) -> str:
        account_id = bootstrap.ensure_account(
            self.context, self.projects[project], name, provider, credentials or {}, options
        )
        self.accounts[name] = account_id
        wait_for(lambda: self.synced(account_id), timeout=60, what=f"catalog of {name}")
        return account_id

    def add_storage_account(
        self,
        project: str,
        name: str,
        provider: str = "local",
        credentials: dict[str, Any] | None = None,
        **storage_options: Any,
    ) -> str:
        """A storage-only account (no catalog to wait for)."""
        return self._add_one_kind_account(
            "storage", project, name, provider, credentials, storage_options
        )

    def add_balancer_account(
        self,
        project: str,
        name: str,
        provider: str = "haproxy",
        credentials: dict[str, Any] | None = None,
        **balancer_options: Any,
    ) -> str:
        """A load-balancer-only account (no catalog to wait for)."""
        return self._add_one_kind_account(
            "loadbalancer", project, name, provider, credentials, balancer_options
        )

    def _add_one_kind_account(
        self,
        kind: str,
        project: str,
        name: str,
        provider: str,
        credentials: dict[str, Any] | None,
        options: dict[str, Any],
    ) -> str:
        account_id = bootstrap.ensure_account(
            self.context,
            self.projects[project],
            name,
            provider,
            credentials or {},
            {kind: options},
            services=[kind],
        )
        self.accounts[name] = account_id
        return account_id

    def synced(self, account_id: str) -> bool:
        with session_scope(self.context.sessions) as session:
            account = session.get(Account, account_id)
            return account is not None and account.catalog_synced_at is not None

    def manage(self, *args: str) -> Result:
        """``overcast-manage ARGS`` against this service's database."""
        config = self.context.config
        env = {
            "OVERCAST_DATABASE__CONNECTION": config.database.connection,
            "OVERCAST_SECURITY__ENCRYPTION_KEY": config.security.encryption_key,
            "OVERCAST_MESSAGING__TRANSPORT_URL": "memory://",
            **{
                f"OVERCAST_PRICING__{name.upper()}": str(value)
                for name, value in dataclasses.asdict(config.pricing).items()
            },
        }
        return CliRunner().invoke(manage_main, list(args), env=env)

    def node(self, node_id: str, key: str = "admin") -> dict[str, Any]:
        answer = self.call("GET", f"/v1/nodes/{node_id}", key=key)
        assert answer.status == 200, answer.body
        return answer.body["node"]  # type: ignore[no-any-return]

    def operation(self, operation_id: str, key: str = "admin") -> dict[str, Any]:
        answer = self.call("GET", f"/v1/operations/{operation_id}", key=key)
        assert answer.status == 200, answer.body
        return answer.body["operation"]  # type: ignore[no-any-return]

    def wait_operation(
        self, operation_id: str, key: str = "admin", timeout: float = 30
    ) -> dict[str, Any]:
        return wait_for(  # type: ignore[no-any-return]
            lambda: (
                (op := self.operation(operation_id, key))["status"] in ("succeeded", "failed")
                and op
            ),
            timeout=timeout,
            what=f"operation {operation_id}",
        )

    def create_node(
        self, name: str, key: str = "admin", wait: bool = True, **spec: Any
    ) -> dict[str, Any]:
        answer = self.call(
            "POST", "/v1/nodes", key=key, body={"name": name, "image": "ubuntu", **spec}
        )
        assert answer.status == 202, answer.body
        if wait:
            operation = self.wait_operation(answer.body["operation"]["id"], key)
            assert operation["status"] == "succeeded", operation
        return self.node(answer.body["node"]["id"], key)

    def live_a_node_s_life(self, node_id: str, key: str = "member") -> None:
        """Reboot, stop, start and delete a running node through the API,
        each action waited for; the node ends deleted."""
        for action, state in (("reboot", "running"), ("stop", "stopped"), ("start", "running")):
            answer = self.call(
                "POST", f"/v1/nodes/{node_id}/action", key=key, body={"action": action}
            )
            assert answer.status == 202, answer.body
            operation = self.wait_operation(answer.body["operation"]["id"], key)
            assert operation["status"] == "succeeded", operation
            wait_for(
                lambda state=state: (
                    (n := self.node(node_id))["state"] == state and n["task"] is None
                ),
                what=f"{action} done",
            )
        deletion = self.call("DELETE", f"/v1/nodes/{node_id}", key=key)
        operation = self.wait_operation(deletion.body["operation"]["id"], key)
        assert operation["status"] == "succeeded", operation


def start_service(config: Config, migrate_database: bool = True) -> Service:
    if migrate_database:
        migrate.upgrade(config.database.connection)
    context = build_context(config)
    purge_queues(context)
    components = [*scheduler_components(context), *worker_components(context)]
    for component in components:
        component.start()
    service = Service(context, components)
    for project in ("alpha", "beta"):
        service.projects[project] = bootstrap.ensure_project(context, project)
    service.keys["admin"] = bootstrap.create_key(context, service.projects["alpha"], "a", "admin")
    service.keys["member"] = bootstrap.create_key(context, service.projects["alpha"], "m", "member")
    service.keys["beta"] = bootstrap.create_key(context, service.projects["beta"], "b", "member")
    service.keys["beta-admin"] = bootstrap.create_key(
        context, service.projects["beta"], "ba", "admin"
    )
    service.keys["operator"] = bootstrap.create_key(
        context, service.projects["alpha"], "o", "operator"
    )
    return service


def stop_service(service: Service) -> None:
    for component in reversed(service.components):
        component.stop()
    service.context.close()


def account_ids(service: Service) -> list[str]:
    with session_scope(service.context.sessions) as session:
        return list(session.scalars(select(Account.id)))


@contextmanager
def cli_environment(service: Service, key: str = "member") -> Iterator[dict[str, str]]:
    """The service's API over HTTP on 127.0.0.1, and the environment the CLI
    reaches it with, as ``key``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ApiServer(service.context, listen(f"127.0.0.1:{port}"))
    server.start()
    try:
        yield {
            "OVERCAST_URL": f"http://127.0.0.1:{port}",
            "OVERCAST_KEY": service.keys[key],
            "OVERCAST_CLIENT_CONFIG": "/nonexistent",
        }
    finally:
        server.stop()

"""How stored rows look to API clients. Secrets never appear here."""

from __future__ import annotations

from typing import Any

from drivers import DriverType
from drivers.storage.base import Object as StoredObject
from services.common.db.functions import json_length
from services.common.db.models import (
    Account,
    Balancer,
    BalancerMember,
    Container,
    Node,
    Operation,
    OperationEvent,
)

#: What :func:`node_view` reads: a list selects only these.
NODE_VIEW_COLUMNS = (
    Node.id,
    Node.name,
    Node.state,
    Node.task,
    Node.provider,
    Node.account_id,
    Node.location_id,
    Node.size_id,
    Node.image_id,
    Node.price_per_hour,
    Node.price_source,
    Node.price_as_of,
    Node.public_ips,
    Node.private_ips,
    Node.ssh_port,
    Node.spec[("deploy", "ssh_username")].as_string().label("ssh_username"),
    Node.spec[("deploy",)].as_string().is_not(None).label("deploys"),
    json_length(Node.alternates).label("alternate_count"),
    Node.group_name,
    Node.host_key,
    Node.error,
    Node.deployment_status,
    Node.deployment_result,
    Node.operation_id,
    Node.created_at,
    Node.updated_at,
)


def node_view(node: Any) -> dict[str, Any]:
    """A node (its row, or a row of :data:`NODE_VIEW_COLUMNS`) as clients see it."""
    return {
        "id": node.id,
        "name": node.name,
        "state": node.state,
        "task": node.task,
        "provider": node.provider,
        "account_id": node.account_id,
        "location_id": node.location_id,
        "size_id": node.size_id,
        "image_id": node.image_id,
        "price_per_hour": node.price_per_hour,
        "price_source": node.price_source,
        "price_as_of": node.price_as_of.isoformat() if node.price_as_of else None,
        "public_ips": list(node.public_ips or []),
        "private_ips": list(node.private_ips or []),
        "ssh_port": node.ssh_port,
        "ssh_username": node.ssh_username,
        "group": node.group_name,
        "host_key": node.host_key,
        "error": node.error,
        "deployment": (
            {"status": node.deployment_status, "result": node.deployment_result}
            if node.deploys
            else None
        ),
        "alternates": node.alternate_count or 0,
        "operation_id": node.operation_id,
        "created_at": node.created_at.isoformat(),
        "updated_at": node.updated_at.isoformat() if node.updated_at else None,
        "links": {"self": f"/v1/nodes/{node.id}"},
    }


def operation_view(
    operation: Operation, events: list[OperationEvent] | None = None
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": operation.id,
        "action": operation.action,
        "status": operation.status,
        "node_id": operation.node_id,
        "resource_id": operation.resource_id,
        "request_id": operation.request_id,
        "error": operation.error,
        "created_at": operation.created_at.isoformat(),
        "updated_at": operation.updated_at.isoformat() if operation.updated_at else None,
        "links": {"self": f"/v1/operations/{operation.id}"},
    }
    if events is not None:
        view["events"] = [
            {"at": event.at.isoformat(), "message": event.message, "data": event.data}
            for event in events
        ]
    return view


def account_view(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "provider": account.provider,
        "project_id": account.project_id,
        "services": [kind.value for kind in DriverType if account.serves(kind)],
        "options": account.options,
        "catalog_synced_at": (
            account.catalog_synced_at.isoformat() if account.catalog_synced_at else None
        ),
        "catalog_error": account.catalog_error,
        "price_date": account.price_date.isoformat() if account.price_date else None,
        "created_at": account.created_at.isoformat(),
        "links": {"self": f"/v1/accounts/{account.id}"},
    }


def container_view(container: Container) -> dict[str, Any]:
    charged = container.charged or {}
    return {
        "id": container.id,
        "name": container.name,
        "project_id": container.project_id,
        "account_id": container.account_id,
        "provider": container.provider,
        "provider_name": container.provider_name,
        "location": container.location,
        "state": container.state,
        "stored_bytes": int(charged.get("stored_bytes", 0)),
        "operation_id": container.operation_id,
        "created_at": container.created_at.isoformat(),
        "links": {"self": f"/v1/containers/{container.name}"},
    }


def balancer_view(
    balancer: Balancer, members: list[BalancerMember] | None = None
) -> dict[str, Any]:
    """A balancer; with ``members``, each with the health its last check saw."""
    view: dict[str, Any] = {
        "id": balancer.id,
        "name": balancer.name,
        "project_id": balancer.project_id,
        "account_id": balancer.account_id,
        "provider": balancer.provider,
        "provider_id": balancer.provider_id,
        "location": balancer.location,
        "ip": balancer.ip,
        "port": balancer.port,
        "protocol": balancer.protocol,
        "algorithm": balancer.algorithm,
        "health_check": balancer.health_check,
        "state": balancer.state,
        "error": balancer.error,
        "operation_id": balancer.operation_id,
        "created_at": balancer.created_at.isoformat(),
        "links": {"self": f"/v1/balancers/{balancer.id}"},
    }
    if members is not None:
        view["members"] = [member_view(member) for member in members]
    return view


def member_view(member: BalancerMember) -> dict[str, Any]:
    return {
        "id": member.id,
        "balancer_id": member.balancer_id,
        "node_id": member.node_id,
        "ip": member.ip,
        "port": member.port,
        "weight": member.weight,
        "state": member.state,
        "health": member.health,
        "provider_member_id": member.provider_member_id,
        "operation_id": member.operation_id,
        "links": {"self": f"/v1/balancers/{member.balancer_id}/members/{member.id}"},
    }


def object_view(container: str, stored: StoredObject) -> dict[str, Any]:
    """An object of the project's container named ``container``."""
    return {
        "container": container,
        "name": stored.name,
        "size": stored.size,
        "hash": stored.hash,
        "hash_type": stored.hash_type,
        "etag": etag_of(stored),
        "content_type": stored.content_type,
        "last_modified": stored.last_modified.isoformat() if stored.last_modified else None,
        "metadata": dict(stored.metadata),
    }


def etag_of(stored: StoredObject) -> str:
    """The object's entity tag: its provider ETag, else its hash, else size and time."""
    etag = stored.extra.get("etag") or stored.hash
    if not etag:
        moment = stored.last_modified.timestamp() if stored.last_modified else 0
        etag = f"{stored.size:x}-{int(moment * 1000):x}"
    return str(etag).strip('"')

"""How stored rows look to API clients. Secrets never appear here."""

from __future__ import annotations

from typing import Any

from services.common.db.models import Account, Node, Operation, OperationEvent


def node_view(node: Node) -> dict[str, Any]:
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
        "public_ips": list(node.public_ips or []),
        "private_ips": list(node.private_ips or []),
        "ssh_port": node.ssh_port,
        "host_key": node.host_key,
        "error": node.error,
        "deployment": (
            {"status": node.deployment_status, "result": node.deployment_result}
            if node.spec.get("deploy")
            else None
        ),
        "alternates": len(node.alternates or []),
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
        "options": account.options,
        "catalog_synced_at": (
            account.catalog_synced_at.isoformat() if account.catalog_synced_at else None
        ),
        "catalog_error": account.catalog_error,
        "price_date": account.price_date.isoformat() if account.price_date else None,
        "created_at": account.created_at.isoformat(),
        "links": {"self": f"/v1/accounts/{account.id}"},
    }

"""``overcast quota``, ``overcast key`` and ``overcast audit``: a project's own rules.

``quota show`` is for every key; keys and the audit log need a project
admin key (an operator's reaches every project).
"""

from __future__ import annotations

import json
from typing import Any

import click

from services.cli.http import client, output

KEY_COLUMNS = ["id", "prefix", "name", "role", "status", "expires_at", "last_used_at"]
AUDIT_COLUMNS = ["at", "method", "route", "resource_id", "status", "key_id", "request_id"]


@click.group()
def quota() -> None:
    """Your project's quota."""


@quota.command("show")
@click.option("--project-id", help="Another project's (operator keys only).")
@click.pass_context
def quota_show(ctx: click.Context, project_id: str | None) -> None:
    """Limits and usage: nodes, vCPUs, RAM and price per hour of live nodes."""
    params = {"project_id": project_id} if project_id else {}
    data = client(ctx).call("GET", "/v1/quota", params=params)
    rows = [
        {
            "resource": name,
            "used": entry["used"],
            "limit": "unlimited" if entry["limit"] is None else entry["limit"],
        }
        for name, entry in data["quota"].items()
        if isinstance(entry, dict)
    ]
    output(ctx, data, rows, ["resource", "used", "limit"])


@click.group()
def key() -> None:
    """API keys of your project (admin)."""


@key.command("list")
@click.pass_context
def key_list(ctx: click.Context) -> None:
    data = client(ctx).call("GET", "/v1/keys", params={"limit": 1000})
    output(ctx, data, data["keys"], KEY_COLUMNS)


@key.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["member", "admin"]), default="member")
@click.option("--expires-in", type=click.IntRange(min=60), help="Seconds until it expires.")
@click.pass_context
def key_create(ctx: click.Context, name: str, role: str, expires_in: int | None) -> None:
    """Create a key; the key is printed once and never shown again."""
    body: dict[str, Any] = {"name": name, "role": role}
    if expires_in:
        body["expires_in"] = expires_in
    data = client(ctx).call("POST", "/v1/keys", json=body)
    if ctx.obj["json"]:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{data['key']['id']} ({data['key']['prefix']}...), role {role}", err=True)
    click.echo(data["secret"])


@key.command("revoke")
@click.argument("key_id")
@click.pass_context
def key_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke a key: refused everywhere within a second."""
    client(ctx).call("DELETE", f"/v1/keys/{key_id}")
    click.echo(f"{key_id} revoked")


@click.group()
def audit() -> None:
    """The audit log of your project's changes (admin)."""


@audit.command("list")
@click.option("--resource-id")
@click.option("--key-id")
@click.option("--limit", type=click.IntRange(1, 1000), default=50)
@click.pass_context
def audit_list(ctx: click.Context, resource_id: str | None, key_id: str | None, limit: int) -> None:
    params: dict[str, Any] = {"limit": limit}
    if resource_id:
        params["resource_id"] = resource_id
    if key_id:
        params["key_id"] = key_id
    data = client(ctx).call("GET", "/v1/audit", params=params)
    output(ctx, data, data["records"], AUDIT_COLUMNS)

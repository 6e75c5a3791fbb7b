"""``overcast balancer``: load balancers and their members from a terminal.

Creating, deleting, attaching and detaching are operations: the command
prints the operation, or with ``--wait`` follows it to its end and exits
non-zero if it failed.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click

from services.cli.http import ApiError, Client, client, output, wait_for_operation

BALANCER_COLUMNS = ["id", "name", "provider", "ip", "port", "protocol", "algorithm", "state"]
MEMBER_COLUMNS = ["id", "node_id", "ip", "port", "weight", "state", "health"]

WAIT = click.option("--wait", is_flag=True, help="Wait until the operation ends.")
TIMEOUT = click.option("--timeout", type=float, default=600, show_default=True)


def _follow(
    ctx: click.Context, api: Client, data: dict[str, Any], what: str, wait: bool, timeout: float
) -> None:
    """Print the operation an answer started, or wait for its end."""
    operation = data["operation"]
    if wait:
        operation = wait_for_operation(api, operation["id"], timeout, ctx.obj["json"])
        if operation["status"] == "failed":
            raise ApiError(f"{what} failed: {operation['error']}")
    click.echo(
        json.dumps(data | {"operation": operation}, indent=2)
        if ctx.obj["json"]
        else f"{what}: {operation['status']} (operation {operation['id']})"
    )


def _id(text: str) -> str:
    return quote(text, safe="")


def _member(
    node_id: str | None, ip: str | None, port: int | None, weight: int | None
) -> dict[str, Any]:
    if (node_id is None) == (ip is None):
        raise click.UsageError("give a node (--node) or an address (--ip and --port)")
    member: dict[str, Any] = {"node_id": node_id} if node_id else {"ip": ip}
    if port is not None:
        member["port"] = port
    if weight is not None:
        member["weight"] = weight
    return member


@click.group()
def balancer() -> None:
    """Load balancers: create, list, show, delete, attach, detach, members."""


@balancer.command("create")
@click.argument("name")
@click.option("--port", type=int, required=True, help="The port it listens on.")
@click.option("--protocol", type=click.Choice(["http", "https", "tcp"]), default="http")
@click.option(
    "--algorithm",
    type=click.Choice(
        [
            "round_robin",
            "random",
            "least_connections",
            "weighted_round_robin",
            "weighted_least_connections",
        ]
    ),
    default="round_robin",
)
@click.option("--account", "account_id", help="Pin it to this account (id).")
@click.option("--provider", "providers", multiple=True, help="Place it at one of these.")
@click.option("--country", "countries", multiple=True, help="Place it in one of these.")
@click.option("--node", "nodes", multiple=True, help="A member node (id; repeatable).")
@click.option("--member-port", type=int, help="The port members serve on (default: --port).")
@click.option("--check-path", help="HTTP health checks on this path (default: TCP connects).")
@click.option("--check-interval", type=float, help="Seconds between health checks.")
@WAIT
@TIMEOUT
@click.pass_context
def balancer_create(
    ctx: click.Context,
    name: str,
    port: int,
    protocol: str,
    algorithm: str,
    account_id: str | None,
    providers: tuple[str, ...],
    countries: tuple[str, ...],
    nodes: tuple[str, ...],
    member_port: int | None,
    check_path: str | None,
    check_interval: float | None,
    wait: bool,
    timeout: float,
) -> None:
    body: dict[str, Any] = {"name": name, "port": port, "protocol": protocol}
    body["algorithm"] = algorithm
    if account_id:
        body["account_id"] = account_id
    if providers:
        body["providers"] = list(providers)
    if countries:
        body["countries"] = list(countries)
    if nodes:
        body["members"] = [_member(node, None, member_port, None) for node in nodes]
    check = {"path": check_path, "interval": check_interval}
    if any(value is not None for value in check.values()):
        body["health_check"] = {k: v for k, v in check.items() if v is not None}
    api = client(ctx)
    data = api.call("POST", "/v1/balancers", json=body)
    _follow(ctx, api, data, f"creating balancer {name} ({data['balancer']['id']})", wait, timeout)


@balancer.command("list")
@click.pass_context
def balancer_list(ctx: click.Context) -> None:
    data = client(ctx).call("GET", "/v1/balancers", params={"limit": 1000})
    output(ctx, data, data["balancers"], BALANCER_COLUMNS)


@balancer.command("show")
@click.argument("balancer_id")
@click.pass_context
def balancer_show(ctx: click.Context, balancer_id: str) -> None:
    data = client(ctx).call("GET", f"/v1/balancers/{_id(balancer_id)}")
    output(ctx, data, [data["balancer"]], BALANCER_COLUMNS)
    if not ctx.obj["json"] and data["balancer"]["members"]:
        click.echo()
        output(ctx, data, data["balancer"]["members"], MEMBER_COLUMNS)


@balancer.command("delete")
@click.argument("balancer_id")
@WAIT
@TIMEOUT
@click.pass_context
def balancer_delete(ctx: click.Context, balancer_id: str, wait: bool, timeout: float) -> None:
    api = client(ctx)
    data = api.call("DELETE", f"/v1/balancers/{_id(balancer_id)}")
    _follow(ctx, api, data, f"deleting balancer {balancer_id}", wait, timeout)


@balancer.command("members")
@click.argument("balancer_id")
@click.pass_context
def balancer_members(ctx: click.Context, balancer_id: str) -> None:
    data = client(ctx).call("GET", f"/v1/balancers/{_id(balancer_id)}/members")
    output(ctx, data, data["members"], MEMBER_COLUMNS)


@balancer.command("attach")
@click.argument("balancer_id")
@click.option("--node", "node_id", help="A node of the project (id).")
@click.option("--ip", help="An address (where the provider takes addresses).")
@click.option("--port", type=int, help="The port it serves on (default: the balancer's).")
@click.option("--weight", type=int, help="0 to 256 (default 1).")
@WAIT
@TIMEOUT
@click.pass_context
def balancer_attach(
    ctx: click.Context,
    balancer_id: str,
    node_id: str | None,
    ip: str | None,
    port: int | None,
    weight: int | None,
    wait: bool,
    timeout: float,
) -> None:
    api = client(ctx)
    body = _member(node_id, ip, port, weight)
    data = api.call("POST", f"/v1/balancers/{_id(balancer_id)}/members", json=body)
    what = f"attaching member {data['member']['id']} to {balancer_id}"
    _follow(ctx, api, data, what, wait, timeout)


@balancer.command("detach")
@click.argument("balancer_id")
@click.argument("member_id")
@WAIT
@TIMEOUT
@click.pass_context
def balancer_detach(
    ctx: click.Context, balancer_id: str, member_id: str, wait: bool, timeout: float
) -> None:
    api = client(ctx)
    data = api.call("DELETE", f"/v1/balancers/{_id(balancer_id)}/members/{_id(member_id)}")
    _follow(ctx, api, data, f"detaching member {member_id} from {balancer_id}", wait, timeout)

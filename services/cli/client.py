"""``overcast``: the client CLI over the HTTP API.

Reads ``OVERCAST_URL`` and ``OVERCAST_KEY`` (or ``--url``/``--key``, or the
``[client]`` section of ``~/.config/overcast/client.ini``). Prints tables by
default and JSON with ``--json``; errors are one line and a non-zero exit.
"""

from __future__ import annotations

import datetime
import json
import shlex
import sys
import uuid
from typing import Any

import click

from services.cli import balancers, inventory, project, storage
from services.cli.deploy import deploy_body, deploy_options
from services.cli.http import ApiError, cell, client, output, table, wait_for_operation
from services.cli.node_exec import node_exec_command


@click.group()
@click.option("--url", envvar="OVERCAST_URL", help="API URL (OVERCAST_URL).")
@click.option("--key", envvar="OVERCAST_KEY", help="API key (OVERCAST_KEY).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_context
def main(ctx: click.Context, url: str | None, key: str | None, as_json: bool) -> None:
    """Overcast client: nodes, offers, catalog, operations."""
    ctx.ensure_object(dict)
    ctx.obj["json"] = as_json
    ctx.obj["settings"] = (url, key)


NODE_COLUMNS = [
    "id",
    "name",
    "state",
    "task",
    "provider",
    "location_id",
    "size_id",
    "price_per_hour",
    "public_ips",
    "private_ips",
]


@main.group()
def node() -> None:
    """Nodes."""


#: ``node create`` options that map straight onto request fields.
SCALAR_FIELDS = {
    "min_ram": "min_ram_mb",
    "min_vcpus": "min_vcpus",
    "min_disk": "min_disk_gb",
    "max_price": "max_price",
    "policy": "policy",
    "group": "group",
    "anti_affinity": "anti_affinity",
    "count": "count",
}
LIST_FIELDS = {
    "countries": "countries",
    "excluded": "exclude_countries",
    "providers": "providers",
    "accounts": "accounts",
}


@node.command("create")
@click.argument("name")
@click.option("--image", required=True, help="Image id or name prefix, e.g. ubuntu.")
@click.option("--min-ram", type=int, help="Minimum RAM in MB.")
@click.option("--min-vcpus", type=int)
@click.option("--min-disk", type=int, help="Minimum disk in GB.")
@click.option("--country", "countries", multiple=True, help="Allowed country (repeatable).")
@click.option("--exclude-country", "excluded", multiple=True, help="Excluded country.")
@click.option("--provider", "providers", multiple=True)
@click.option("--account", "accounts", multiple=True)
@click.option("--max-price", type=float, help="USD per hour.")
@click.option("--policy", type=click.Choice(["cheapest", "round_robin", "zone_aware"]))
@click.option("--group", help="Group name (zone_aware spreads a group across zones).")
@click.option("--anti-affinity", type=click.Choice(["soft", "strict"]))
@click.option("--count", type=click.IntRange(1, 100), help="Create this many nodes.")
@click.option("--ssh-key", type=click.File("r"), help="Public key file to install.")
@deploy_options
@click.option("--dry-run", is_flag=True, help="Show the placement and price; create nothing.")
@click.option("--wait", is_flag=True, help="Wait until the node runs (or fails).")
@click.option("--timeout", type=float, default=900, show_default=True)
@click.pass_context
def node_create(ctx: click.Context, /, name: str, image: str, **options: Any) -> None:
    """Create a node (or --count nodes) by what it needs."""
    body: dict[str, Any] = {"name": name, "image": image}
    body.update(
        {
            field: options[option]
            for option, field in SCALAR_FIELDS.items()
            if options[option] is not None
        }
    )
    body.update(
        {field: list(options[option]) for option, field in LIST_FIELDS.items() if options[option]}
    )
    if options["ssh_key"] is not None:
        body["ssh_public_key"] = options["ssh_key"].read().strip()
    deployment = deploy_body(options)
    if deployment is not None:
        body["deploy"] = deployment
    api = client(ctx)
    if options["dry_run"]:
        plan = api.call("POST", "/v1/nodes", json={**body, "dry_run": True})
        if ctx.obj["json"] or not plan["placeable"]:
            click.echo(json.dumps(plan, indent=2) if ctx.obj["json"] else plan["reason"])
            if not plan["placeable"]:
                sys.exit(1)
            return
        rows = [
            {"role": "placement" if i == 0 else "node", **p}
            for i, p in enumerate(plan["placements"])
        ]
        rows += [{"role": "alternate", **p} for p in plan["alternates"]]
        click.echo(
            table(
                rows,
                [
                    "role",
                    "provider",
                    "account_id",
                    "location_id",
                    "zone",
                    "size_id",
                    "image_id",
                    "price_per_hour",
                ],
            )
        )
        click.echo(f"total per hour: {cell(plan['total_price_per_hour'])} USD")
        return
    created = api.call(
        "POST", "/v1/nodes", json=body, headers={"Idempotency-Key": f"cli-{uuid.uuid4().hex}"}
    )
    operation = created["operation"]
    if options["wait"]:
        operation = wait_for_operation(
            api, operation["id"], options["timeout"], quiet=ctx.obj["json"]
        )
    nodes = [api.call("GET", f"/v1/nodes/{node['id']}")["node"] for node in created["nodes"]]
    output(ctx, nodes[0] if len(nodes) == 1 else {"nodes": nodes}, nodes, NODE_COLUMNS)
    if operation["status"] == "failed":
        raise ApiError(f"creating {name} failed: {operation['error']}")


@node.command("list")
@click.option("--state")
@click.option("--limit", type=int, default=100)
@click.pass_context
def node_list(ctx: click.Context, state: str | None, limit: int) -> None:
    """List nodes (follows pages)."""
    api = client(ctx)
    params: dict[str, Any] = {"limit": limit}
    if state:
        params["state"] = state
    nodes: list[dict[str, Any]] = []
    page = api.call("GET", "/v1/nodes", params=params)
    nodes.extend(page["nodes"])
    while page.get("next"):
        page = api.call("GET", page["next"])
        nodes.extend(page["nodes"])
    output(ctx, {"nodes": nodes}, nodes, NODE_COLUMNS)


@node.command("show")
@click.argument("node_id")
@click.pass_context
def node_show(ctx: click.Context, node_id: str) -> None:
    data = client(ctx).call("GET", f"/v1/nodes/{node_id}")["node"]
    if ctx.obj["json"]:
        click.echo(json.dumps(data, indent=2))
    else:
        for name, value in data.items():
            click.echo(
                f"{name:16} {cell(value) if not isinstance(value, dict) else json.dumps(value)}"
            )


def _node_task(
    ctx: click.Context, node_id: str, method: str, path: str, body: Any, wait: bool, timeout: float
) -> None:
    api = client(ctx)
    operation = api.call(method, path, json=body)["operation"]
    if wait:
        operation = wait_for_operation(api, operation["id"], timeout, quiet=ctx.obj["json"])
    if ctx.obj["json"]:
        click.echo(json.dumps(operation, indent=2))
    else:
        click.echo(f"{operation['action']} of {node_id}: {operation['status']}")
    if operation["status"] == "failed":
        raise ApiError(f"{operation['action']} failed: {operation['error']}")


for _action in ("reboot", "start", "stop"):

    def _make(action: str) -> Any:
        @node.command(action)
        @click.argument("node_id")
        @click.option("--wait", is_flag=True)
        @click.option("--timeout", type=float, default=600)
        @click.pass_context
        def command(ctx: click.Context, node_id: str, wait: bool, timeout: float) -> None:
            _node_task(
                ctx,
                node_id,
                "POST",
                f"/v1/nodes/{node_id}/action",
                {"action": action},
                wait,
                timeout,
            )

        command.__doc__ = f"{action.capitalize()} a node."
        return command

    _make(_action)


@node.command("deploy")
@click.argument("node_id")
@deploy_options
@click.option("--wait", is_flag=True, help="Wait until the deployment ends.")
@click.option("--timeout", type=float, default=900, show_default=True)
@click.pass_context
def node_deploy(
    ctx: click.Context, /, node_id: str, wait: bool, timeout: float, **options: Any
) -> None:
    """Deploy onto a running node: --fetch stored objects, then --script."""
    body = deploy_body(options)
    if body is None:
        raise click.UsageError("give --fetch and/or --script")
    _node_task(ctx, node_id, "POST", f"/v1/nodes/{node_id}/deploy", body, wait, timeout)


@node.command("exec")
@click.argument("words", nargs=-1, required=True, metavar="-- COMMAND...")
@click.option("--node", "node_ids", multiple=True, help="A node's id (repeatable).")
@click.option("--all", "every", is_flag=True, help="Every running node of the project.")
@click.option("--group", help="The running nodes of this group.")
@click.option("--provider", help="The running nodes at this provider.")
@click.option("--parallel", type=click.IntRange(1, 256), default=16, show_default=True)
@click.option("--timeout", type=float, default=300, show_default=True, help="Per node.")
@click.option("--user", help="Log in as (default: the node's deploy user, else root).")
@click.pass_context
def node_exec(ctx: click.Context, /, words: tuple[str, ...], **options: Any) -> None:
    """Run a command on many nodes at once, output prefixed with node names:
    ``overcast node exec --all -- uname -a``."""
    node_exec_command(ctx, command=shlex.join(words), **options)


@node.command("delete")
@click.argument("node_id")
@click.option("--wait", is_flag=True)
@click.option("--timeout", type=float, default=600)
@click.pass_context
def node_delete(ctx: click.Context, node_id: str, wait: bool, timeout: float) -> None:
    """Delete a node."""
    _node_task(ctx, node_id, "DELETE", f"/v1/nodes/{node_id}", None, wait, timeout)


OFFER_COLUMNS = [
    "provider",
    "account_id",
    "location_id",
    "country",
    "zone",
    "size_id",
    "ram_mb",
    "vcpus",
    "disk_gb",
    "price_per_hour",
    "price_source",
    "price_age",
]


def price_age(offer: dict[str, Any], now: datetime.datetime | None = None) -> str:
    """How old an offer's price is, e.g. ``3h`` or ``630d stale``."""
    if not offer.get("price_as_of"):
        return "-"
    as_of = datetime.datetime.fromisoformat(offer["price_as_of"])
    seconds = ((now or datetime.datetime.now(datetime.UTC)) - as_of).total_seconds()
    if seconds < 3600:
        age = f"{max(0, int(seconds // 60))}m"
    elif seconds < 2 * 86400:
        age = f"{int(seconds // 3600)}h"
    else:
        age = f"{int(seconds // 86400)}d"
    return f"{age} stale" if offer.get("price_stale") else age


@main.group()
def offer() -> None:
    """Offers: account x location x size, with price."""


@offer.command("list")
@click.option("--min-ram", type=int)
@click.option("--min-vcpus", type=int)
@click.option("--image")
@click.option("--country", "countries", multiple=True)
@click.option("--exclude-country", "excluded", multiple=True)
@click.option("--max-price", type=float)
@click.option("--skip-stale-prices", is_flag=True, help="Leave out offers whose price is stale.")
@click.option("--sort", type=click.Choice(["price", "ram", "vcpus"]), default="price")
@click.option("--limit", type=int, default=10)
@click.pass_context
def offer_list(
    ctx: click.Context,
    min_ram: int | None,
    min_vcpus: int | None,
    image: str | None,
    countries: tuple[str, ...],
    excluded: tuple[str, ...],
    max_price: float | None,
    skip_stale_prices: bool,
    sort: str,
    limit: int,
) -> None:
    """Cheapest matching offers first; unknown prices last. PRICE_SOURCE says
    where each price came from (bundled, fetched, override), PRICE_AGE how old
    it is."""
    params: dict[str, Any] = {"sort": sort, "limit": limit}
    if skip_stale_prices:
        params["skip_stale_prices"] = "true"
    for name, value in (
        ("min_ram_mb", min_ram),
        ("min_vcpus", min_vcpus),
        ("image", image),
        ("max_price", max_price),
    ):
        if value is not None:
            params[name] = value
    if countries:
        params["country"] = ",".join(countries)
    if excluded:
        params["exclude_country"] = ",".join(excluded)
    data = client(ctx).call("GET", "/v1/offers", params=params)
    rows = [{**row, "price_age": price_age(row)} for row in data["offers"]]
    output(ctx, data, rows, OFFER_COLUMNS)


def _catalog(name: str, columns: list[str]) -> None:
    @main.group(name)
    def group() -> None:
        pass

    group.help = f"{name.capitalize()}s of your accounts."

    @group.command("list")
    @click.option("--account-id")
    @click.pass_context
    def listing(ctx: click.Context, account_id: str | None) -> None:
        params = {"account_id": account_id} if account_id else {}
        data = client(ctx).call("GET", f"/v1/{name}s", params=params)
        output(ctx, data, data[f"{name}s"], columns)


_catalog("location", ["account_id", "id", "name", "country", "region", "zone"])
_catalog(
    "size", ["account_id", "location_id", "size_id", "ram_mb", "vcpus", "disk_gb", "price_per_hour"]
)
_catalog("image", ["account_id", "location_id", "id", "name"])


@main.group()
def operation() -> None:
    """Operations."""


@operation.command("show")
@click.argument("operation_id")
@click.pass_context
def operation_show(ctx: click.Context, operation_id: str) -> None:
    data = client(ctx).call("GET", f"/v1/operations/{operation_id}")["operation"]
    if ctx.obj["json"]:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{data['id']}  {data['action']}  {data['status']}  node {data['node_id']}")
    if data.get("error"):
        click.echo(f"error: {data['error']}")
    for event in data.get("events", []):
        click.echo(f"  {event['at']}  {event['message']}")


@main.group()
def account() -> None:
    """Provider accounts."""


@account.command("list")
@click.pass_context
def account_list(ctx: click.Context) -> None:
    data = client(ctx).call("GET", "/v1/accounts")
    output(
        ctx,
        data,
        data["accounts"],
        ["id", "name", "provider", "services", "catalog_synced_at", "catalog_error"],
    )


for _command in (
    project.quota,
    project.key,
    project.audit,
    storage.container,
    storage.object_,
    balancers.balancer,
    inventory.inventory,
):
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

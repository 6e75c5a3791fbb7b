"""``overcast inventory --ansible``: the project's running nodes as an Ansible
dynamic inventory.

Ansible runs an inventory script with ``--list`` (everything) or ``--host
NAME`` (one host's variables); a two-line script that calls this command
with those arguments is such a script (see the README). Hosts are grouped
by provider, account, location, country and the nodes' own group; each
host's variables are its address, SSH port and user, and its Overcast id.
No key is in it: Ansible logs in with the user's own key, the one the nodes
were created with.
"""

from __future__ import annotations

import json
import re
from typing import Any

import click

from services.cli.http import Client, client


def group_name(kind: str, value: str) -> str:
    """An Ansible group name: letters, digits and ``_`` only."""
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{kind}_{value}")


def all_pages(api: Client, path: str, collection: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    url: str | None = f"{path}?limit=500"
    while url:
        page = api.call("GET", url)
        items.extend(page[collection])
        url = page.get("next")
    return items


def ansible_inventory(api: Client) -> dict[str, Any]:
    countries = {
        (location["account_id"], location["id"]): location["country"]
        for location in api.call("GET", "/v1/locations")["locations"]
    }
    groups: dict[str, set[str]] = {}
    hostvars: dict[str, dict[str, Any]] = {}
    for node in all_pages(api, "/v1/nodes", "nodes"):
        address = (node["public_ips"] or node["private_ips"] or [None])[0]
        if node["state"] != "running" or address is None:
            continue
        host = node["name"] if node["name"] not in hostvars else node["id"]
        hostvars[host] = {
            "ansible_host": address,
            "ansible_port": node["ssh_port"] or 22,
            "ansible_user": node.get("ssh_username") or "root",
            "overcast_id": node["id"],
            "overcast_provider": node["provider"],
            "overcast_location": node["location_id"],
        }
        country = countries.get((node["account_id"], node["location_id"]))
        for kind, value in (
            ("provider", node["provider"]),
            ("account", node["account_id"]),
            ("location", node["location_id"]),
            ("country", country),
            ("group", node.get("group")),
        ):
            if value:
                groups.setdefault(group_name(kind, str(value)), set()).add(host)
    inventory: dict[str, Any] = {name: {"hosts": sorted(hosts)} for name, hosts in groups.items()}
    inventory["all"] = {"hosts": sorted(hostvars), "children": sorted(groups)}
    inventory["_meta"] = {"hostvars": hostvars}
    return inventory


@click.command()
@click.option("--ansible", is_flag=True, required=True, help="Ansible's inventory JSON.")
@click.option("--list", "listing", is_flag=True, help="Every host (what Ansible asks first).")
@click.option("--host", help="One host's variables.")
@click.pass_context
def inventory(ctx: click.Context, ansible: bool, listing: bool, host: str | None) -> None:
    """The project's running nodes as an inventory (``--ansible``)."""
    built = ansible_inventory(client(ctx))
    if host is not None:
        click.echo(json.dumps(built["_meta"]["hostvars"].get(host, {}), indent=2))
    else:
        click.echo(json.dumps(built, indent=2))

"""``overcast node exec``: one command over many nodes, in parallel, as
pssh and Fabric do, through the API (which holds the nodes' keys).

Output lines are prefixed with the node's name as they arrive; a summary of
exit statuses ends it, and the exit code is non-zero if any node failed.
"""

from __future__ import annotations

import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import click

from services.cli.http import ApiError, Client, client
from services.cli.inventory import all_pages


def chosen(
    api: Client, ids: tuple[str, ...], every: bool, group: str | None, provider: str | None
) -> list[dict[str, Any]]:
    if ids and (every or group or provider):
        raise click.UsageError("name nodes, or choose them with --all, --group or --provider")
    if not ids and not (every or group or provider):
        raise click.UsageError("name nodes, or give --all, --group or --provider")
    if ids:
        return [api.call("GET", f"/v1/nodes/{node_id}")["node"] for node_id in ids]
    return [
        node
        for node in all_pages(api, "/v1/nodes", "nodes")
        if node["state"] == "running"
        and (group is None or node.get("group") == group)
        and (provider is None or node["provider"] == provider)
    ]


class Printer:
    """Whole lines, prefixed with their node's name, one writer at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def line(self, name: str, text: str, error: bool = False) -> None:
        with self.lock:
            click.echo(f"[{name}] {text}", err=error)


def run_on(api: Client, node: dict[str, Any], body: dict[str, Any], printer: Printer) -> str | int:
    """The node's exit status, or why it failed."""
    name = node["name"]
    pending = {"stdout": "", "stderr": ""}
    try:
        response = api.request("POST", f"/v1/nodes/{node['id']}/exec", json=body, stream=True)
        status: str | int = "no exit status"
        for raw in response.iter_lines():
            item = json.loads(raw)
            for kind in ("stdout", "stderr"):
                if kind in item:
                    *whole, pending[kind] = (pending[kind] + item[kind]).split("\n")
                    for text in whole:
                        printer.line(name, text, kind == "stderr")
            if "exit_status" in item:
                status = int(item["exit_status"])
            if "error" in item:
                status = str(item["error"])
    except ApiError as error:
        status = str(error)
    except ValueError:
        status = "garbled answer"
    for kind, rest in pending.items():
        if rest:
            printer.line(name, rest, kind == "stderr")
    return status


def node_exec_command(
    ctx: click.Context,
    node_ids: tuple[str, ...],
    every: bool,
    group: str | None,
    provider: str | None,
    parallel: int,
    timeout: float,
    user: str | None,
    command: str,
) -> None:
    api = client(ctx)
    api.timeout = timeout + 30
    nodes = chosen(api, node_ids, every, group, provider)
    if not nodes:
        raise ApiError("no running node matches")
    body: dict[str, Any] = {"command": command, "timeout": timeout}
    if user:
        body["user"] = user
    printer = Printer()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        results = list(pool.map(lambda node: run_on(api, node, body, printer), nodes))
    failed = 0
    click.echo("")
    for node, status in zip(nodes, results, strict=True):
        if status == 0:
            click.echo(f"{node['name']}: ok")
        else:
            failed += 1
            why = f"exit {status}" if isinstance(status, int) else status
            click.echo(f"{node['name']}: FAILED ({why})")
    click.echo(f"{len(nodes) - failed} ok, {failed} failed")
    if failed:
        sys.exit(1)

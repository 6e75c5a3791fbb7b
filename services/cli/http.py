"""What every ``overcast`` command shares: the API client, settings, and output."""

from __future__ import annotations

import configparser
import json
import os
import time
from pathlib import Path
from typing import Any

import click
import requests

FINAL_OPERATION = ("succeeded", "failed")


class ApiError(click.ClickException):
    exit_code = 2


class Client:
    def __init__(self, url: str, key: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"
        self.timeout = timeout

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The answer to a call (``stream=True`` for data); ApiError for an error."""
        try:
            response = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as error:
            raise ApiError(f"cannot reach {self.url}: {type(error).__name__}") from None
        if response.status_code >= 400:
            try:
                detail = response.json()["error"]
                message = f"{detail['message']} ({detail['code']}, HTTP {response.status_code})"
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {response.status_code}"
            raise ApiError(message)
        return response


def _settings(url: str | None, key: str | None) -> tuple[str, str]:
    parser = configparser.ConfigParser()
    parser.read(
        Path(
            os.environ.get(
                "OVERCAST_CLIENT_CONFIG", Path.home() / ".config" / "overcast" / "client.ini"
            )
        )
    )
    url = url or parser.get("client", "url", fallback=None) or "http://127.0.0.1:8774"
    key = key or parser.get("client", "key", fallback=None)
    if not key:
        raise click.UsageError("no API key: set OVERCAST_KEY or pass --key")
    return url, key


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[cell(row.get(column)) for column in columns] for row in rows]
    widths = [
        max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)
    ]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(lines)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(item) for item in value) or "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def output(ctx: click.Context, data: Any, rows: list[dict[str, Any]], columns: list[str]) -> None:
    if ctx.obj["json"]:
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(table(rows, columns))


def client(ctx: click.Context) -> Client:
    return Client(*_settings(*ctx.obj["settings"]))


def wait_for_operation(
    api: Client, operation_id: str, timeout: float, quiet: bool
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen = 0
    while True:
        operation = api.call("GET", f"/v1/operations/{operation_id}")["operation"]
        if not quiet:
            for event in operation.get("events", [])[seen:]:
                click.echo(f"  {event['at'][11:19]}  {event['message']}", err=True)
            seen = len(operation.get("events", []))
        if operation["status"] in FINAL_OPERATION:
            return operation  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise ApiError(
                f"timed out after {timeout:.0f}s; operation {operation_id} is "
                f"still {operation['status']}"
            )
        time.sleep(0.5)

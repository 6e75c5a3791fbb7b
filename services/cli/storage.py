"""``overcast container`` and ``overcast object``: object storage from a terminal.

Objects stream from files or stdin (``-``) to the API and back to files or
stdout, a chunk at a time, so ``tar c dir | overcast object put backups/x.tar -``
never touches the local disk. What comes back is checked against the hash
the provider keeps, and a download lands in its file only once complete.
On a terminal (and without ``--json``) transfers draw a progress line with
the size, rate and time left on stderr.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import click
import requests

from services.cli.http import ApiError, Client, client, output, wait_for_operation

CHUNK = 1024 * 1024
CONTAINER_COLUMNS = ["name", "provider", "location", "state", "stored_bytes", "account_id"]
OBJECT_COLUMNS = ["name", "size", "content_type", "last_modified", "hash"]


def object_path(target: str) -> tuple[str, str]:
    """``container/key`` split at the first "/"."""
    container, _, key = target.partition("/")
    if not container or not key:
        raise click.BadParameter(f"{target!r}: give container/key")
    return container, key


def object_address(target: str) -> str:
    container, key = object_path(target)
    return f"/v1/containers/{quote(container, safe='')}/objects/{quote(key, safe='/')}"


# -- progress ----------------------------------------------------------------


def size_text(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    raise AssertionError("unreachable")


class Progress:
    """Counts bytes going through; on a terminal, draws them at most ten
    times a second: done / total, percent, rate, time left."""

    def __init__(self, label: str, total: int | None, shown: bool) -> None:
        self.label = label
        self.total = total
        self.shown = shown
        self.done = 0
        self.started = time.monotonic()
        self._drawn = 0.0

    def add(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.shown and now - self._drawn >= 0.1:
            self._drawn = now
            self.draw(now)

    def draw(self, now: float) -> None:
        rate = self.done / max(now - self.started, 1e-6)
        line = f"{self.label}  {size_text(self.done)}"
        if self.total:
            left = (self.total - self.done) / rate if rate else 0
            line += (
                f" / {size_text(self.total)}  {100 * self.done // self.total:3d}%"
                f"  {size_text(rate)}/s  ETA {int(left) // 60}:{int(left) % 60:02d}"
            )
        else:
            line += f"  {size_text(rate)}/s"
        click.echo(f"\r{line}\x1b[K", nl=False, err=True)

    def finish(self) -> None:
        if self.shown:
            self.draw(time.monotonic())
            click.echo(err=True)


def progress_shown(ctx: click.Context, data_to_stdout: bool = False) -> bool:
    """On a terminal only: not with --json, nor when the output goes to a
    pipe or a file, nor over object data written to stdout."""
    terminal = sys.stdout.isatty() and sys.stderr.isatty()
    return terminal and not ctx.obj["json"] and not data_to_stdout


class Checksums:
    """MD5 and SHA-256 of the bytes seen, to compare with the provider's hash."""

    def __init__(self) -> None:
        self.digests = {"md5": hashlib.md5(), "sha256": hashlib.sha256()}

    def update(self, chunk: bytes) -> None:
        for digest in self.digests.values():
            digest.update(chunk)

    def check(self, hash_type: str | None, expected: str | None, what: str) -> None:
        if not expected or hash_type not in self.digests:
            return
        actual = self.digests[hash_type].hexdigest()
        if actual != expected:
            raise ApiError(f"{what}: {hash_type} {actual} differs from the stored {expected}")


class Upload:
    """A file-like body for requests: reads a stream a chunk at a time,
    counting and hashing what goes out. ``len()`` is given for a known size,
    so the request carries Content-Length; otherwise it goes chunked."""

    def __init__(self, stream: IO[bytes], size: int | None, progress: Progress) -> None:
        self.stream = stream
        self.size = size
        self.progress = progress
        self.checksums = Checksums()

    def read(self, count: int = CHUNK) -> bytes:
        chunk = self.stream.read(max(count, CHUNK))
        self.checksums.update(chunk)
        self.progress.add(len(chunk))
        return chunk

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read():
            yield chunk

    def __len__(self) -> int:
        assert self.size is not None
        return self.size


# -- containers --------------------------------------------------------------


@click.group()
def container() -> None:
    """Object-storage containers."""


@container.command("create")
@click.argument("name")
@click.option("--account", "account_id", required=True, help="Id of an account serving storage.")
@click.option("--location", help="Region or location at the provider.")
@click.option("--provider-name", help="Its name at the provider (default: NAME).")
@click.option("--existing", is_flag=True, help="Adopt a container that exists at the provider.")
@click.pass_context
def container_create(
    ctx: click.Context,
    name: str,
    account_id: str,
    location: str | None,
    provider_name: str | None,
    existing: bool,
) -> None:
    body: dict[str, Any] = {"account_id": account_id}
    if location:
        body["location"] = location
    if provider_name:
        body["provider_name"] = provider_name
    if existing:
        body["existing"] = True
    data = client(ctx).call("PUT", f"/v1/containers/{quote(name, safe='')}", json=body)
    output(ctx, data, [data["container"]], CONTAINER_COLUMNS)


@container.command("list")
@click.pass_context
def container_list(ctx: click.Context) -> None:
    data = client(ctx).call("GET", "/v1/containers", params={"limit": 1000})
    output(ctx, data, data["containers"], CONTAINER_COLUMNS)


@container.command("show")
@click.argument("name")
@click.pass_context
def container_show(ctx: click.Context, name: str) -> None:
    data = client(ctx).call("GET", f"/v1/containers/{quote(name, safe='')}")
    output(ctx, data, [data["container"]], CONTAINER_COLUMNS)


@container.command("delete")
@click.argument("name")
@click.option("--recursive", is_flag=True, help="Delete its objects too (in a worker).")
@click.option("--wait", is_flag=True, help="Wait until a recursive delete finished.")
@click.option("--timeout", type=float, default=3600, show_default=True)
@click.pass_context
def container_delete(
    ctx: click.Context, name: str, recursive: bool, wait: bool, timeout: float
) -> None:
    api = client(ctx)
    params = {"recursive": "true"} if recursive else {}
    data = api.call("DELETE", f"/v1/containers/{quote(name, safe='')}", params=params)
    if data is None:
        click.echo(f"deleted {name}")
        return
    operation = data["operation"]
    if wait:
        operation = wait_for_operation(api, operation["id"], timeout, ctx.obj["json"])
        if operation["status"] == "failed":
            raise ApiError(f"deleting {name} failed: {operation['error']}")
    click.echo(
        json.dumps(operation, indent=2)
        if ctx.obj["json"]
        else (f"deleting {name}: {operation['status']} (operation {operation['id']})")
    )


# -- objects -----------------------------------------------------------------


@click.group("object")
def object_() -> None:
    """Objects: put, get, list, delete, copy, url."""


@object_.command("put")
@click.argument("target", metavar="CONTAINER/KEY")
@click.argument("source", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--content-type", help="Default: application/octet-stream.")
@click.option("--meta", multiple=True, metavar="NAME=VALUE", help="Metadata (repeatable).")
@click.pass_context
def object_put(
    ctx: click.Context, target: str, source: str, content_type: str | None, meta: tuple[str, ...]
) -> None:
    """Upload SOURCE (a file, or - for stdin) to CONTAINER/KEY."""
    headers = {"Content-Type": content_type or "application/octet-stream"}
    for item in meta:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise click.BadParameter(f"{item!r}: give NAME=VALUE", param_hint="--meta")
        headers[f"X-Object-Meta-{name}"] = value
    api = client(ctx)
    stream: IO[bytes] = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115
    try:
        size = None if source == "-" else os.fstat(stream.fileno()).st_size
        progress = Progress(target, size, progress_shown(ctx))
        body = Upload(stream, size, progress)
        data = _with_long_timeout(api).call(
            "PUT",
            object_address(target),
            data=body if size is not None else iter(body),
            headers=headers,
        )
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    progress.finish()
    stored = data["object"]
    body.checksums.check(stored["hash_type"], stored["hash"], target)
    output(ctx, data, [stored], OBJECT_COLUMNS)


@object_.command("get")
@click.argument("target", metavar="CONTAINER/KEY")
@click.argument("destination", required=False, default="-", type=click.Path(allow_dash=True))
@click.option("--range", "byte_range", metavar="START-END", help="Only these bytes (inclusive).")
@click.pass_context
def object_get(ctx: click.Context, target: str, destination: str, byte_range: str | None) -> None:
    """Download CONTAINER/KEY to DESTINATION (a file, or - for stdout)."""
    to_stdout = destination == "-"
    headers = {"Range": f"bytes={byte_range}"} if byte_range else {}
    api = _with_long_timeout(client(ctx))
    response = api.request("GET", object_address(target), headers=headers, stream=True)
    size = int(response.headers.get("Content-Length") or 0) or None
    progress = Progress(target, size, progress_shown(ctx, to_stdout))
    checksums = Checksums()
    if to_stdout:
        _receive(response, sys.stdout.buffer, progress, checksums, size)
    else:
        path = Path(destination)
        handle, temporary = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as any file the user writes, not mkstemp's 0600
        try:
            with os.fdopen(handle, "wb") as sink:
                _receive(response, sink, progress, checksums, size)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    progress.finish()
    if not byte_range:
        hash_type, _, expected = response.headers.get("X-Object-Hash", "").partition("=")
        checksums.check(hash_type, expected, target)


def _receive(
    response: requests.Response,
    sink: IO[bytes],
    progress: Progress,
    checksums: Checksums,
    size: int | None,
) -> None:
    received = 0
    try:
        for chunk in response.iter_content(CHUNK):
            sink.write(chunk)
            checksums.update(chunk)
            progress.add(len(chunk))
            received += len(chunk)
    except requests.RequestException as error:
        raise ApiError(f"the download was cut short after {received} bytes: {error}") from None
    if size is not None and received != size:
        raise ApiError(f"the download was cut short: {received} of {size} bytes")


def _with_long_timeout(api: Client) -> Client:
    """Transfers may pause between chunks longer than a call would."""
    api.timeout = max(api.timeout, 300.0)
    return api


@object_.command("list")
@click.argument("container_name", metavar="CONTAINER")
@click.option("--prefix", default="")
@click.option("--delimiter", help="Roll keys up at this character (e.g. /).")
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True)
@click.pass_context
def object_list(
    ctx: click.Context, container_name: str, prefix: str, delimiter: str | None, limit: int
) -> None:
    api = client(ctx)
    path = f"/v1/containers/{quote(container_name, safe='')}/objects"
    objects: list[dict[str, Any]] = []
    prefixes: list[str] = []
    marker = None
    while len(objects) < limit:
        params = {"prefix": prefix, "limit": min(1000, limit - len(objects))}
        if delimiter:
            params["delimiter"] = delimiter
        if marker:
            params["marker"] = marker
        page = api.call("GET", path, params=params)
        objects += page["objects"]
        prefixes += page["prefixes"]
        marker = page["next_marker"]
        if not marker:
            break
    data = {"objects": objects, "prefixes": prefixes, "next_marker": marker}
    rows = [{"name": p, "size": None} for p in prefixes] + objects
    output(ctx, data, rows, OBJECT_COLUMNS)


@object_.command("delete")
@click.argument("target", metavar="CONTAINER/KEY")
@click.pass_context
def object_delete(ctx: click.Context, target: str) -> None:
    client(ctx).call("DELETE", object_address(target))
    click.echo(f"deleted {target}")


@object_.command("copy")
@click.argument("source", metavar="CONTAINER/KEY")
@click.argument("target", metavar="CONTAINER/KEY")
@click.option("--wait/--no-wait", default=True, help="Wait for a copy across providers.")
@click.option("--timeout", type=float, default=3600, show_default=True)
@click.pass_context
def object_copy(ctx: click.Context, source: str, target: str, wait: bool, timeout: float) -> None:
    """Copy SOURCE to TARGET: at the provider when both are at one account."""
    object_path(source)
    api = client(ctx)
    data = api.call("PUT", object_address(target), headers={"X-Copy-From": source})
    if "operation" in data and wait:
        operation = wait_for_operation(api, data["operation"]["id"], timeout, ctx.obj["json"])
        if operation["status"] == "failed":
            raise ApiError(f"copying {source} failed: {operation['error']}")
        data = {"operation": operation}
    if "object" in data:
        output(ctx, data, [data["object"]], OBJECT_COLUMNS)
    else:
        click.echo(json.dumps(data, indent=2) if ctx.obj["json"] else f"copied to {target}")


@object_.command("url")
@click.argument("target", metavar="CONTAINER/KEY")
@click.option("--method", type=click.Choice(["GET", "PUT"]), default="GET", show_default=True)
@click.option("--expires", type=click.IntRange(1, 604800), default=3600, show_default=True)
@click.pass_context
def object_url(ctx: click.Context, target: str, method: str, expires: int) -> None:
    """A time-limited direct URL, where the provider has them."""
    data = client(ctx).call(
        "POST", f"{object_address(target)}/url", json={"method": method, "expires": expires}
    )
    click.echo(json.dumps(data, indent=2) if ctx.obj["json"] else data["url"])

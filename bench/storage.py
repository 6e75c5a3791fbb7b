"""Object transfer through the API against the same transfer without it.

For the local provider and for S3 (a moto_server): upload and download one
object of 1 GiB (5 GiB with ``--big``) through a real ``overcast-api``
process (cheroot, SQLite), then straight to the peer (a file copy for local,
boto3 for S3), then with Libcloud 3.9.1's driver. Prints MB/s per path and
direction, the ratio of each to the direct path, and how far the API
process's resident memory rose above its idle size during the transfer
(its peak RSS, reset before each transfer through /proc/PID/clear_refs).

Uploads through the API are chunked (length unknown, as from a pipe).

    python bench/storage.py [--big] [--size-mib N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine
from services.common.crypto import generate_key
from tests.helpers import stop_process_group, wait_for
from tests.integration.deployment import free_port
from tests.integration.moto import Moto, moto_server

MIB = 1024 * 1024
CHUNK = MIB
BIN = Path(sys.executable).parent


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            yield chunk


def write_source(path: Path, size: int) -> None:
    block = os.urandom(CHUNK)
    with path.open("wb") as stream:
        for index in range(size // CHUNK):
            stream.write(index.to_bytes(8, "big") + block[8:])


def drain(chunks: Iterator[bytes]) -> int:
    return sum(len(chunk) for chunk in chunks)


class Api:
    """``overcast-api`` as its own process, and what its memory does."""

    def __init__(self, workdir: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "OVERCAST_DATABASE__CONNECTION": f"sqlite:///{workdir}/overcast.sqlite",
            "OVERCAST_MESSAGING__TRANSPORT_URL": "memory://",
            "OVERCAST_SECURITY__ENCRYPTION_KEY": generate_key(),
            "OVERCAST_API__BIND": f"127.0.0.1:{port}",
            "OVERCAST_SERVICE__STATE_DIR": str(workdir),
            "OVERCAST_PRICING__CACHE_FILE": str(workdir / "pricing.json"),
        }
        self.manage("db", "upgrade")
        self.manage("project", "create", "bench")
        key = self.manage("key", "create", "bench", "--role", "admin").strip().split()[-1]
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"
        self.log = (workdir / "api.log").open("wb")
        self.process = subprocess.Popen(
            [str(BIN / "overcast-api")],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._up, timeout=30, what="overcast-api")

    def manage(self, *args: str) -> str:
        return subprocess.run(
            [str(BIN / "overcast-manage"), *args],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def _up(self) -> bool:
        try:
            return self.session.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        answer = self.session.request(method, self.url + path, timeout=600, **kwargs)
        if answer.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
        return answer

    def container(self, name: str, provider: str, credentials: dict[str, str], **options: Any):
        account = self.call(
            "POST",
            "/v1/accounts",
            json={
                "name": name,
                "provider": provider,
                "services": ["storage"],
                "credentials": credentials,
                "options": {"storage": options},
            },
        ).json()["account"]
        self.call("PUT", f"/v1/containers/{name}", json={"account_id": account["id"]})

    def memory(self, field: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no {field}")

    def reset_peak(self) -> int:
        """Reset the peak RSS; returns the RSS now."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
        return self.memory("VmRSS")

    def stop(self) -> None:
        stop_process_group(self.process)
        self.log.close()


def timed(transfer: Callable[[], int]) -> tuple[float, int]:
    began = time.perf_counter()
    moved = transfer()
    return time.perf_counter() - began, moved


def measure(
    results: list[dict[str, Any]],
    provider: str,
    path: str,
    direction: str,
    transfer: Callable[[], int],
    api: Api | None = None,
) -> None:
    idle = api.reset_peak() if api else 0
    seconds, moved = timed(transfer)
    row = {
        "provider": provider,
        "path": path,
        "direction": direction,
        "mb_per_s": moved / seconds / 1e6,
        "bytes": moved,
    }
    if api:
        row["rss_growth_mib"] = (api.memory("VmHWM") - idle) / MIB
    results.append(row)
    print(
        f"  {provider:5} {path:9} {direction:8} {row['mb_per_s']:8.1f} MB/s"
        + (f"   API RSS +{row['rss_growth_mib']:.1f} MiB" if api else ""),
        flush=True,
    )


def through_api(api: Api, results: list[dict[str, Any]], provider: str, source: Path) -> None:
    address = f"/v1/containers/{provider}-bench/objects/big.bin"

    def upload() -> int:
        size = api.call("PUT", address, data=file_chunks(source)).json()["object"]["size"]
        return int(size)

    def download() -> int:
        with api.call("GET", address, stream=True) as answer:
            return drain(answer.iter_content(CHUNK))

    measure(results, provider, "api", "upload", upload, api)
    measure(results, provider, "api", "download", download, api)
    api.call("DELETE", address)


def local_paths(results: list[dict[str, Any]], source: Path, workdir: Path, api: Api) -> None:
    root = workdir / "local-root"
    api.container("local-bench", "local", {}, root=str(root))
    through_api(api, results, "local", source)

    copy = workdir / "direct-copy.bin"
    measure(
        results,
        "local",
        "direct",
        "upload",
        lambda: (shutil.copyfile(source, copy), copy.stat().st_size)[1],
    )
    measure(results, "local", "direct", "download", lambda: drain(file_chunks(copy)))
    copy.unlink()

    from libcloud.storage.drivers.local import LocalStorageDriver

    (workdir / "libcloud-root").mkdir()
    driver = LocalStorageDriver(str(workdir / "libcloud-root"))
    box = driver.create_container("box")

    def libcloud_upload() -> int:
        return int(driver.upload_object_via_stream(file_chunks(source), box, "big.bin").size)

    def libcloud_download() -> int:
        item = driver.get_object("box", "big.bin")
        return drain(driver.download_object_as_stream(item, chunk_size=CHUNK))

    measure(results, "local", "libcloud", "upload", libcloud_upload)
    measure(results, "local", "libcloud", "download", libcloud_download)


def s3_paths(results: list[dict[str, Any]], source: Path, moto: Moto, api: Api) -> None:
    api.container(
        "s3-bench", "s3", {"key": moto.access_key, "secret": moto.secret_key}, endpoint=moto.url
    )
    through_api(api, results, "s3", source)

    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=moto.url,
        aws_access_key_id=moto.access_key,
        aws_secret_access_key=moto.secret_key,
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="direct-bench")

    def boto_upload() -> int:
        with source.open("rb") as stream:
            client.upload_fileobj(stream, "direct-bench", "big.bin")
        return source.stat().st_size

    def boto_download() -> int:
        body = client.get_object(Bucket="direct-bench", Key="big.bin")["Body"]
        return drain(body.iter_chunks(CHUNK))

    measure(results, "s3", "direct", "upload", boto_upload)
    measure(results, "s3", "direct", "download", boto_download)
    client.delete_object(Bucket="direct-bench", Key="big.bin")

    from libcloud.storage.drivers.minio import MinIOStorageDriver  # S3 at any endpoint, SigV4

    host, port = moto.url.removeprefix("http://").split(":")
    driver = MinIOStorageDriver(
        moto.access_key, moto.secret_key, host=host, port=int(port), secure=False
    )
    box = driver.create_container("libcloud-bench")

    def libcloud_upload() -> int:
        return int(driver.upload_object_via_stream(file_chunks(source), box, "big.bin").size)

    def libcloud_download() -> int:
        item = driver.get_object("libcloud-bench", "big.bin")
        return drain(driver.download_object_as_stream(item, chunk_size=CHUNK))

    measure(results, "s3", "libcloud", "upload", libcloud_upload)
    measure(results, "s3", "libcloud", "download", libcloud_download)


def report(results: list[dict[str, Any]]) -> None:
    direct = {
        (row["provider"], row["direction"]): row["mb_per_s"]
        for row in results
        if row["path"] == "direct"
    }
    print("\nprovider  path      direction     MB/s   vs direct   API RSS growth")
    for row in results:
        ratio = row["mb_per_s"] / direct[(row["provider"], row["direction"])]
        growth = f"{row['rss_growth_mib']:.1f} MiB" if "rss_growth_mib" in row else "-"
        print(
            f"{row['provider']:8}  {row['path']:8}  {row['direction']:9} "
            f"{row['mb_per_s']:8.1f}   {ratio:8.2f}   {growth}"
        )
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true", help="5 GiB instead of 1 GiB")
    parser.add_argument("--size-mib", type=int, help="Any other size, in MiB")
    parser.add_argument("--providers", nargs="+", default=["local", "s3"])
    args = parser.parse_args()
    size = (args.size_mib or (5120 if args.big else 1024)) * MIB
    print(f"{machine()}; object of {size // MIB} MiB")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as temporary:
        workdir = Path(temporary)
        source = workdir / "source.bin"
        write_source(source, size)
        api = Api(workdir)
        try:
            if "local" in args.providers:
                local_paths(results, source, workdir, api)
            if "s3" in args.providers:
                # Authentication off: moto judges Libcloud's SigV4 requests
                # wrongly with it on; every path here meets the same server.
                with moto_server(workdir, authenticated=False) as moto:
                    s3_paths(results, source, moto, api)
        finally:
            api.stop()
    report(results)


if __name__ == "__main__":
    main()

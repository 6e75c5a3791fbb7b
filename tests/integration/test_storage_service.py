"""Object storage through the real API server (cheroot on 127.0.0.1), on the
local provider and on moto_server's S3: streamed both ways, verified both
ways, and nothing left behind by a client that goes away mid-upload."""

from __future__ import annotations

import hashlib
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from drivers.storage.azure_blobs import AzureBlobsStorageDriver
from drivers.storage.s3 import S3StorageDriver
from services.api.server import ApiServer, listen
from tests.functional.harness import Service, service_config, start_service, stop_service
from tests.helpers import MIB, block, blocks, wait_for
from tests.integration.azurite import Azurite, azurite_server
from tests.integration.moto import Moto, pending_uploads
from tests.integration.proxy import CorruptingProxy

pytestmark = pytest.mark.integration

PROVIDERS = ("local", "s3", "azure_blobs")


@pytest.fixture(scope="module")
def azurite(tmp_path_factory) -> Iterator[Azurite]:
    with azurite_server(tmp_path_factory.mktemp("azurite")) as running:
        yield running


@dataclass
class Served:
    service: Service
    url: str
    moto: Moto
    azurite: Azurite
    disk: Path

    def headers(self, **more: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.service.keys['member']}", **more}

    def container(self, account: str) -> str:
        name = f"box-{uuid.uuid4().hex[:16]}"
        answer = requests.put(
            f"{self.url}/v1/containers/{name}",
            json={"account_id": self.service.accounts[account]},
            headers=self.headers(),
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        return name

    def object_url(self, container: str, key: str) -> str:
        return f"{self.url}/v1/containers/{container}/objects/{key}"

    def azure(self) -> AzureBlobsStorageDriver:
        return AzureBlobsStorageDriver(
            self.azurite.account, self.azurite.key, endpoint=self.azurite.url
        )

    def s3(self) -> S3StorageDriver:
        return S3StorageDriver(self.moto.access_key, self.moto.secret_key, endpoint=self.moto.url)

    def s3_account(self, name: str, endpoint: str) -> None:
        self.service.add_storage_account(
            "alpha",
            name,
            "s3",
            {"key": self.moto.access_key, "secret": self.moto.secret_key},
            endpoint=endpoint,
            part_size=5 * MIB,
        )


@pytest.fixture
def served(tmp_path: Path, moto: Moto, azurite: Azurite) -> Iterator[Served]:
    service = start_service(service_config(tmp_path))
    try:
        disk = tmp_path / "disk"
        service.add_storage_account("alpha", "local", root=str(disk))
        sock = listen("127.0.0.1:0")
        server = ApiServer(service.context, sock)
        server.start()
        try:
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            running = Served(service, url, moto, azurite, disk)
            running.s3_account("s3", moto.url)
            service.add_storage_account(
                "alpha",
                "azure_blobs",
                "azure_blobs",
                {"key": azurite.account, "secret": azurite.key},
                endpoint=azurite.url,
                part_size=4 * MIB,
            )
            yield running
        finally:
            server.stop()
    finally:
        stop_service(service)


def sha256_of(chunks: Iterator[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_64_mib_stream_of_unknown_length_comes_back_identical(served, provider):
    container = served.container(provider)
    address = served.object_url(container, "backups/big.tar")
    stored = requests.put(address, data=blocks(64), headers=served.headers(), timeout=120)
    assert stored.status_code == 201, stored.text
    assert stored.json()["object"]["size"] == 64 * MIB

    with requests.get(address, headers=served.headers(), stream=True, timeout=120) as answer:
        assert answer.status_code == 200
        assert answer.headers["Content-Length"] == str(64 * MIB)
        assert sha256_of(answer.iter_content(MIB)) == sha256_of(blocks(64))

    start, end = 7 * MIB - 100, 8 * MIB + 100
    ranged = requests.get(
        address, headers=served.headers(Range=f"bytes={start}-{end - 1}"), timeout=60
    )
    assert ranged.status_code == 206
    assert ranged.content == (block(6) + block(7) + block(8))[start - 6 * MIB : end - 6 * MIB]


def upload_in_progress(served: Served, provider: str, container: str) -> bool:
    if provider == "s3":
        return bool(pending_uploads(served.s3(), container))
    if provider == "azure_blobs":
        return bool(served.azure().uncommitted_blocks(container, "half.tar"))
    return any((served.disk / ".tmp").iterdir())


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_client_gone_mid_upload_leaves_nothing_behind(served, provider):
    container = served.container(provider)
    host, port = served.url.removeprefix("http://").split(":")
    client = socket.create_connection((host, int(port)))
    key = served.service.keys["member"]
    client.sendall(
        f"PUT /v1/containers/{container}/objects/half.tar HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Length: {64 * MIB}\r\n\r\n".encode()
    )
    for index in range(12):
        client.sendall(block(index))
    wait_for(
        lambda: upload_in_progress(served, provider, container),
        timeout=30,
        what="the upload to reach the provider",
    )
    client.close()  # as a killed client's kernel does

    wait_for(
        lambda: not upload_in_progress(served, provider, container),
        timeout=60,
        what="the partial upload to be aborted",
    )
    answer = requests.get(
        served.object_url(container, "half.tar"), headers=served.headers(), timeout=30
    )
    assert answer.status_code == 404
    listing = requests.get(
        f"{served.url}/v1/containers/{container}/objects", headers=served.headers(), timeout=30
    )
    assert listing.json()["objects"] == []


@pytest.mark.parametrize("size", [3000, 12 * MIB], ids=["single-put", "multipart"])
def test_a_peer_that_corrupts_one_byte_is_caught_and_nothing_is_kept(served, size):
    data = b"".join(blocks(12))[:size]
    with CorruptingProxy(served.moto.url) as proxy:
        served.s3_account("bent", proxy.url)
        container = served.container("bent")
        address = served.object_url(container, "bent.bin")
        proxy.corrupt_requests = True
        refused = requests.put(address, data=iter([data]), headers=served.headers(), timeout=60)
        assert refused.status_code == 502, refused.text
        assert refused.json()["error"]["code"] == "checksum_mismatch"
        assert requests.get(address, headers=served.headers(), timeout=30).status_code == 404
        assert pending_uploads(served.s3(), container) == []

        proxy.corrupt_requests = False
        assert requests.put(address, data=data, headers=served.headers(), timeout=60).ok
        proxy.corrupt_responses = True
        bad = requests.get(address, headers=served.headers(), stream=True, timeout=60)
        if size <= MIB:  # found before the answer began: an error answer
            assert bad.status_code == 502
            assert bad.json()["error"]["code"] == "checksum_mismatch"
            return
        received = bytearray()
        with pytest.raises(requests.exceptions.RequestException):
            for chunk in bad.iter_content(64 * 1024):
                received.extend(chunk)
        bad.close()
        assert len(received) < size  # cut short: never a corrupt object passed as whole


def test_copies_between_providers_stream_through_a_worker(served):
    source = served.container("local")
    target = served.container("s3")
    data = b"".join(blocks(6))
    assert requests.put(
        served.object_url(source, "app.tar"), data=data, headers=served.headers(), timeout=60
    ).ok
    copied = requests.put(
        served.object_url(target, "app.tar"),
        headers=served.headers(**{"X-Copy-From": f"{source}/app.tar"}),
        timeout=60,
    )
    assert copied.status_code == 202, copied.text
    operation = served.service.wait_operation(copied.json()["operation"]["id"], key="member")
    assert operation["status"] == "succeeded", operation
    back = requests.get(served.object_url(target, "app.tar"), headers=served.headers(), timeout=60)
    assert back.content == data


def test_direct_urls_are_presigned_for_the_provider(served):
    """moto_server cannot check presigned URLs with IAM on; test_s3 checks the
    signature itself against botocore's. Here: the API hands out the URL."""
    container = served.container("s3")
    address = served.object_url(container, "direct.txt")
    signatures = set()
    for method in ("PUT", "GET"):
        answer = requests.post(
            f"{address}/url",
            json={"method": method, "expires": 300},
            headers=served.headers(),
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        direct = requests.utils.urlparse(answer.json()["url"])
        query = dict(part.split("=", 1) for part in direct.query.split("&"))
        assert f"{direct.scheme}://{direct.netloc}" == served.moto.url
        assert direct.path == f"/{container}/direct.txt"
        assert query["X-Amz-Expires"] == "300"
        signatures.add(query["X-Amz-Signature"])
    assert len(signatures) == 2  # a GET URL cannot be used to PUT

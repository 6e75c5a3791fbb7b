"""Deployments that fetch objects from the project's containers onto a local
node, streamed over SSH and checked by the node's own sha256sum; scripts
with their environment and directory; and a deployment on a running node."""

from __future__ import annotations

import getpass
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.common.ssh_keys import generate_key_pair
from tests.functional.harness import Service, service_config, start_service, stop_service
from tests.helpers import MIB, block

pytestmark = pytest.mark.integration


@pytest.fixture
def service(tmp_path: Path, local_state_dir: Path) -> Iterator[Service]:
    running = start_service(service_config(tmp_path))
    try:
        running.add_account("alpha", "local", provider="local", state_dir=str(local_state_dir))
        disk = running.add_storage_account("alpha", "disk", root=str(tmp_path / "objects"))
        made = running.call("PUT", "/v1/containers/apps", key="member", body={"account_id": disk})
        assert made.status == 201, made.body
        yield running
    finally:
        stop_service(running)


def upload(service: Service, key: str, data: bytes) -> None:
    answer = service.call(
        "PUT",
        f"/v1/containers/apps/objects/{key}",
        key="member",
        raw=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert answer.status == 201, answer.body


def test_a_node_is_deployed_from_storage_and_deployed_again_later(service, tmp_path):
    payload = block(7, 3 * MIB + 11)  # several SFTP writes, streamed
    upload(service, "release/app.bin", payload)
    upload(service, "run.sh", b"#!/bin/sh\necho started\n")
    work = tmp_path / "srv"
    work.mkdir()
    _, public_key = generate_key_pair()
    node = service.create_node(
        "app",
        key="member",
        image="host",
        providers=["local"],
        ssh_public_key=public_key,
        deploy={
            "ssh_username": getpass.getuser(),
            "steps": [
                {"file": {"from": "apps/release/app.bin", "target": str(work / "app.bin")}},
                {"file": {"from": "apps/run.sh", "target": str(work / "run.sh"), "mode": "0755"}},
                {
                    "script": '#!/bin/sh\necho "$GREETING from $(pwd)"; ./run.sh\n',
                    "env": {"GREETING": "hello world"},
                    "cwd": str(work),
                },
            ],
        },
    )
    assert node["deployment"]["status"] == "succeeded", node["deployment"]
    assert (work / "app.bin").read_bytes() == payload
    assert (work / "run.sh").stat().st_mode & 0o777 == 0o755
    assert not list(work.glob("*.overcast-*"))  # no partial file left
    steps = node["deployment"]["result"]["steps"]
    sent = hashlib.sha256(payload).hexdigest()
    assert steps[0]["stdout_tail"] == f"sha256 {sent}\n"
    assert steps[2]["stdout_tail"] == f"hello world from {work}\nstarted\n"

    upload(service, "release/app.bin", b"version 2\n")
    again = service.call(
        "POST",
        f"/v1/nodes/{node['id']}/deploy",
        key="member",
        body={
            "ssh_username": getpass.getuser(),
            "steps": [{"file": {"from": "apps/release/app.bin", "target": str(work / "app.bin")}}],
        },
    )
    assert again.status == 202, again.body
    assert service.wait_operation(again.body["operation"]["id"])["status"] == "succeeded"
    assert (work / "app.bin").read_bytes() == b"version 2\n"
    assert service.node(node["id"])["deployment"]["result"]["steps"][0]["name"].startswith(
        "file apps/release/app.bin"
    )

    missing_container = service.call(
        "POST",
        f"/v1/nodes/{node['id']}/deploy",
        key="member",
        body={"steps": [{"file": {"from": "nope/app.bin", "target": "/tmp/x"}}]},
    )
    assert missing_container.status == 400
    assert missing_container.error["field"] == "steps.0.file.from"

    missing_object = service.call(
        "POST",
        f"/v1/nodes/{node['id']}/deploy",
        key="member",
        body={
            "ssh_username": getpass.getuser(),
            "steps": [{"file": {"from": "apps/not-there", "target": str(work / "x")}}],
        },
    )
    assert missing_object.status == 202
    failed = service.wait_operation(missing_object.body["operation"]["id"])
    assert failed["status"] == "failed" and "not-there" in failed["error"]
    assert service.node(node["id"])["state"] == "running"  # a failed deployment keeps the node

"""Through the service: a local node is created, deployed onto and reachable by SSH."""

import base64
import getpass

import paramiko
import pytest

from drivers.common.ssh_keys import generate_key_pair
from drivers.deployment import load_private_key
from tests.functional.harness import service_config, start_service, stop_service
from tests.integration.conftest import sshd_processes

pytestmark = pytest.mark.integration


@pytest.fixture
def service(tmp_path, local_state_dir):
    running = start_service(service_config(tmp_path))
    try:
        running.add_account("alpha", "local", provider="local", state_dir=str(local_state_dir))
        yield running
    finally:
        stop_service(running)


def test_local_node_is_deployed_and_reachable_over_ssh(service, local_state_dir, tmp_path):
    private_key, public_key = generate_key_pair()
    marker = tmp_path / "deployed.txt"
    answer = service.call(
        "POST",
        "/v1/nodes",
        body={
            "name": "box",
            "image": "host",
            "providers": ["local"],
            "ssh_public_key": public_key,
            "deploy": {
                "ssh_username": getpass.getuser(),
                "files": [{"path": str(tmp_path / "motd"), "content": "hi\n"}],
                "script": f"#!/bin/sh\ncat {tmp_path / 'motd'} > {marker}\necho done\n",
            },
        },
    )
    assert answer.status == 202, answer.body
    operation = service.wait_operation(answer.body["operation"]["id"], timeout=60)
    assert operation["status"] == "succeeded", operation
    assert "box: running; deployment queued" in [e["message"] for e in operation["events"]]

    node = service.node(answer.body["node"]["id"])
    assert node["deployment"]["status"] == "succeeded"
    steps = node["deployment"]["result"]["steps"]
    assert [s["exit_status"] for s in steps] == [0, 0] and steps[-1]["stdout_tail"] == "done\n"
    assert node["host_key"].startswith("ssh-ed25519 ")
    assert marker.read_text() == "hi\n"

    # The user's own key logs in, and the host key is the one recorded.
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    key_type, key_data = node["host_key"].split()
    client.get_host_keys().add(
        f"[{node['private_ips'][0]}]:{node['ssh_port']}",
        key_type,
        paramiko.Ed25519Key(data=base64.b64decode(key_data)),
    )
    client.connect(
        node["private_ips"][0],
        port=node["ssh_port"],
        username=getpass.getuser(),
        pkey=load_private_key(private_key),
        allow_agent=False,
        look_for_keys=False,
        timeout=10,
    )
    _stdin, stdout, _stderr = client.exec_command("echo reachable")
    assert stdout.read() == b"reachable\n"
    client.close()

    deletion = service.call("DELETE", f"/v1/nodes/{node['id']}")
    assert service.wait_operation(deletion.body["operation"]["id"])["status"] == "succeeded"
    assert sshd_processes(local_state_dir) == []


def test_a_failing_deploy_script_fails_the_operation_not_the_node(service):
    _private_key, public_key = generate_key_pair()
    answer = service.call(
        "POST",
        "/v1/nodes",
        body={
            "name": "box",
            "image": "host",
            "providers": ["local"],
            "ssh_public_key": public_key,
            "deploy": {
                "ssh_username": getpass.getuser(),
                "script": "#!/bin/sh\necho nope >&2\nexit 7\n",
            },
        },
    )
    operation = service.wait_operation(answer.body["operation"]["id"], timeout=60)
    assert operation["status"] == "failed"
    assert "exit status 7" in operation["error"] and "nope" in operation["error"]
    node = service.node(answer.body["node"]["id"])
    assert node["state"] == "running"
    assert node["deployment"]["status"] == "failed"
    assert node["deployment"]["result"]["exit_status"] == 7
    assert node["deployment"]["result"]["stderr_tail"] == "nope\n"

"""Local nodes are real sshd servers; deployments run on them over SSH."""

import getpass

import pytest

from drivers.common.ssh_keys import generate_key_pair
from drivers.compute.base import NodeAuthSSHKey, NodeState
from drivers.compute.local import IMAGE, SIZE, LocalNodeDriver
from drivers.deployment import (
    FileDeployment,
    MemoryHostKeyStore,
    MultiStepDeployment,
    ScriptDeployment,
    SSHKeyDeployment,
    run_deployment,
)
from drivers.errors import AuthError, DeploymentError, HostKeyMismatch, InvalidRequest
from tests.integration.conftest import sshd_processes

pytestmark = pytest.mark.integration

USER = getpass.getuser()


@pytest.fixture
def key_pair():
    return generate_key_pair()


def deploy(node, deployment, private_key, host_keys):
    return run_deployment(
        node,
        deployment,
        username=USER,
        private_key=private_key,
        host_keys=host_keys,
        connect_attempts=5,
    )


def test_three_nodes_deploy_reboot_tamper_destroy(
    local_driver, local_state_dir, key_pair, tmp_path
):
    private_key, public_key = key_pair
    host_keys = MemoryHostKeyStore()
    nodes, results = [], []
    for index in range(3):
        target = tmp_path / f"greeting-{index}.txt"
        steps = MultiStepDeployment(
            (
                FileDeployment(target=str(target), content=f"hello from node {index}\n".encode()),
                ScriptDeployment(f"#!/bin/sh\ncat {target}\necho to-stderr >&2\n", name="read"),
            )
        )
        node, result = local_driver.deploy_node(
            f"node-{index}",
            SIZE,
            IMAGE,
            steps,
            private_key=private_key,
            auth=NodeAuthSSHKey(public_key),
            ssh_username=USER,
            host_keys=host_keys,
            timeout=30,
            idempotency_token=f"token-{index}",
        )
        nodes.append(node)
        results.append(result)

    assert len({node.private_ips[0] for node in nodes}) == 3
    assert all(node.state is NodeState.RUNNING for node in nodes)
    for index, result in enumerate(results):
        assert [step.exit_status for step in result.steps] == [0, 0]
        assert result.steps[1].stdout_tail == f"hello from node {index}\n"
        assert result.steps[1].stderr_tail == "to-stderr\n"
        assert host_keys.get(nodes[index].id) == result.host_key

    # A failing step is reported with its exit status and stderr tail.
    failing = ScriptDeployment("#!/bin/sh\necho partial\necho it broke >&2\nexit 3\n", name="fails")
    with pytest.raises(DeploymentError) as raised:
        deploy(nodes[0], MultiStepDeployment((failing,)), private_key, host_keys)
    assert raised.value.step == "fails"
    assert raised.value.exit_status == 3
    assert raised.value.stderr_tail == "it broke\n"
    assert raised.value.stdout_tail == "partial\n"

    # Reboot keeps the host key: reconnecting succeeds.
    local_driver.reboot_node(nodes[1])
    (rebooted,) = local_driver.wait_until_running([nodes[1]], timeout=15, poll_interval=0.05)
    again = deploy(rebooted, ScriptDeployment("#!/bin/sh\ntrue\n"), private_key, host_keys)
    assert again.host_key == results[1].host_key

    # A changed host key is refused.
    local_driver.ex_replace_host_key(nodes[2])
    local_driver.reboot_node(nodes[2])
    local_driver.wait_until_running([nodes[2]], timeout=15, poll_interval=0.05)
    with pytest.raises(HostKeyMismatch):
        deploy(nodes[2], ScriptDeployment("#!/bin/sh\ntrue\n"), private_key, host_keys)

    for node in nodes:
        local_driver.destroy_node(node)
    assert local_driver.list_nodes() == []
    assert sshd_processes(local_state_dir) == []
    assert [p.name for p in local_state_dir.iterdir() if not p.name.startswith(".")] == []


def test_nodes_survive_a_new_driver_and_stop_start(local_driver, local_state_dir, key_pair):
    _private_key, public_key = key_pair
    node = local_driver.create_node(
        "n", SIZE, IMAGE, auth=NodeAuthSSHKey(public_key), idempotency_token="same"
    )
    assert (
        local_driver.create_node(
            "n", SIZE, IMAGE, auth=NodeAuthSSHKey(public_key), idempotency_token="same"
        ).id
        == node.id
    )

    rediscovered = LocalNodeDriver(state_dir=local_state_dir)
    (found,) = rediscovered.wait_until_running([node], timeout=15, poll_interval=0.05)
    assert found.id == node.id and found.private_ips == node.private_ips

    rediscovered.stop_node(node)
    assert rediscovered.get_node(node.id).state is NodeState.STOPPED
    rediscovered.start_node(node)
    rediscovered.wait_until_running([node], timeout=15, poll_interval=0.05)
    rediscovered.destroy_node(node)
    assert sshd_processes(local_state_dir) == []


def test_ssh_key_deployment_and_refused_keys(local_driver, key_pair):
    private_key, public_key = key_pair
    second_private, second_public = generate_key_pair()
    node = local_driver.create_node("n", SIZE, IMAGE, auth=NodeAuthSSHKey(public_key))
    (node,) = local_driver.wait_until_running([node], timeout=15, poll_interval=0.05)
    host_keys = MemoryHostKeyStore()

    with pytest.raises(AuthError):
        deploy(node, ScriptDeployment("#!/bin/sh\ntrue\n"), second_private, host_keys)

    authorized = f"{node.extra['directory']}/authorized_keys"
    deploy(
        node, SSHKeyDeployment(second_public, authorized_keys=authorized), private_key, host_keys
    )
    result = deploy(node, ScriptDeployment("#!/bin/sh\necho ok\n"), second_private, host_keys)
    assert result.steps[0].stdout_tail == "ok\n"
    local_driver.destroy_node(node)


def test_script_timeout_is_a_deployment_error(local_driver, key_pair):
    private_key, public_key = key_pair
    node = local_driver.create_node("n", SIZE, IMAGE, auth=NodeAuthSSHKey(public_key))
    (node,) = local_driver.wait_until_running([node], timeout=15, poll_interval=0.05)
    with pytest.raises(DeploymentError, match="timed out"):
        deploy(
            node,
            ScriptDeployment("#!/bin/sh\necho started\nexec sleep 30\n", timeout=0.5, name="hangs"),
            private_key,
            MemoryHostKeyStore(),
        )
    local_driver.destroy_node(node)


def test_create_needs_an_ssh_key(local_driver):
    with pytest.raises(InvalidRequest, match="NodeAuthSSHKey"):
        local_driver.create_node("n", SIZE, IMAGE)

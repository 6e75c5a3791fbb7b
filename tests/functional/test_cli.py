"""The client CLI against a real API server (cheroot on 127.0.0.1)."""

import json
import socket

import pytest
from click.testing import CliRunner

from services.api.server import ApiServer, listen
from services.cli.client import main
from tests.helpers import MIB, block, destroy_balancers, need_haproxy, wait_for
from tests.integration.deployment import free_port


@pytest.fixture
def cli(service):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ApiServer(service.context, listen(f"127.0.0.1:{port}"))
    server.start()
    runner = CliRunner()
    env = {
        "OVERCAST_URL": f"http://127.0.0.1:{port}",
        "OVERCAST_KEY": service.keys["admin"],
        "OVERCAST_CLIENT_CONFIG": "/nonexistent",
    }

    def run(*args):
        return runner.invoke(main, list(args), env=env)

    run.env = env

    wait_for(lambda: run("account", "list").exit_code == 0, what="the API server")
    yield run
    server.stop()


def test_create_wait_list_reboot_delete(cli):
    created = cli(
        "node",
        "create",
        "web",
        "--image",
        "ubuntu",
        "--min-ram",
        "4096",
        "--exclude-country",
        "US",
        "--wait",
    )
    assert created.exit_code == 0, created.output
    assert "running" in created.output and "eu-west-3a" in created.output
    listed = json.loads(cli("--json", "node", "list").output)
    (node,) = listed["nodes"]
    assert cli("node", "reboot", node["id"], "--wait").output.strip().endswith("succeeded")
    assert cli("node", "delete", node["id"], "--wait").exit_code == 0
    assert json.loads(cli("--json", "node", "list").output)["nodes"] == []


def test_dry_run_and_batches(cli):
    plan = cli(
        "node",
        "create",
        "web",
        "--image",
        "ubuntu",
        "--count",
        "3",
        "--policy",
        "zone_aware",
        "--group",
        "web",
        "--country",
        "DE",
        "--dry-run",
    )
    assert plan.exit_code == 0, plan.output
    assert "placement" in plan.output and "total per hour" in plan.output
    assert json.loads(cli("--json", "node", "list").output)["nodes"] == []
    batch = cli("--json", "node", "create", "b", "--image", "ubuntu", "--count", "2", "--wait")
    assert batch.exit_code == 0, batch.output
    assert [n["name"] for n in json.loads(batch.output)["nodes"]] == ["b-1", "b-2"]
    impossible = cli(
        "node", "create", "x", "--image", "ubuntu", "--min-ram", "9999999", "--dry-run"
    )
    assert impossible.exit_code == 1 and "no offer matches" in impossible.output


def test_offers_and_catalog_listings(cli):
    offers = cli("offer", "list", "--min-ram", "4096", "--exclude-country", "US", "--limit", "1")
    assert offers.exit_code == 0 and "eu-west-3a" in offers.output and "0.0538" in offers.output
    assert "Frankfurt" in cli("location", "list").output
    assert "gpu-1" in cli("size", "list").output
    assert "windows-2022" in cli("image", "list").output


def test_errors_are_one_line_and_a_non_zero_exit(cli):
    missing = cli("node", "show", "node-nope")
    assert missing.exit_code == 2
    assert missing.output.strip() == "Error: node node-nope not found (not_found, HTTP 404)"
    failed = cli("node", "create", "x", "--image", "ubuntu", "--min-ram", "9999999", "--wait")
    assert failed.exit_code == 2 and "no offer matches" in failed.output
    assert "Traceback" not in failed.output


def test_unreachable_api_and_missing_key(service):
    runner = CliRunner()
    unreachable = runner.invoke(
        main,
        ["node", "list"],
        env={
            "OVERCAST_URL": "http://127.0.0.1:9",
            "OVERCAST_KEY": "k",
            "OVERCAST_CLIENT_CONFIG": "/nonexistent",
        },
    )
    assert unreachable.exit_code == 2 and "cannot reach http://127.0.0.1:9" in unreachable.output
    no_key = runner.invoke(
        main, ["node", "list"], env={"OVERCAST_KEY": "", "OVERCAST_CLIENT_CONFIG": "/nonexistent"}
    )
    assert no_key.exit_code == 2 and "no API key" in no_key.output


def test_quota_keys_and_audit_from_the_cli(cli, service):
    shown = cli("quota", "show")
    assert shown.exit_code == 0, shown.output
    assert "nodes" in shown.output and "unlimited" in shown.output
    as_json = json.loads(cli("--json", "quota", "show").output)
    assert as_json["quota"]["nodes"]["used"] == 0

    made = cli("key", "create", "robot", "--role", "member", "--expires-in", "3600")
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("oc_")
    listed = cli("key", "list")
    assert secret[:11] in listed.output and secret not in listed.output
    key_id = next(line.split()[0] for line in listed.output.splitlines() if secret[:11] in line)
    assert cli("key", "revoke", key_id).exit_code == 0
    assert "revoked" in cli("key", "list").output

    audit = cli("audit", "list", "--resource-id", key_id)
    assert audit.exit_code == 0 and "key_delete" in audit.output
    other = cli("--json", "quota", "show", "--project-id", service.projects["beta"])
    assert other.exit_code != 0 and "operator" in other.output


def test_containers_and_objects_from_files_and_pipes(cli, service, tmp_path):
    account = service.add_storage_account("alpha", "disk", root=str(tmp_path / "disk"))
    made = cli("container", "create", "backups", "--account", account)
    assert made.exit_code == 0, made.output
    assert "backups" in cli("container", "list").output

    data = block(3, 3 * MIB + 17)
    source = tmp_path / "data.bin"
    source.write_bytes(data)
    put = cli("object", "put", "backups/files/data.bin", str(source), "--meta", "owner=ops")
    assert put.exit_code == 0, put.output
    piped = CliRunner().invoke(
        main,
        ["object", "put", "backups/piped.tar", "-"],
        input=data,
        env=cli.env,
    )
    assert piped.exit_code == 0, piped.output

    target = tmp_path / "back.bin"
    assert cli("object", "get", "backups/files/data.bin", str(target)).exit_code == 0
    assert target.read_bytes() == data
    to_stdout = CliRunner().invoke(main, ["object", "get", "backups/piped.tar", "-"], env=cli.env)
    assert to_stdout.exit_code == 0
    assert to_stdout.stdout_bytes == data
    ranged = CliRunner().invoke(
        main, ["object", "get", "backups/piped.tar", "-", "--range", "10-19"], env=cli.env
    )
    assert ranged.stdout_bytes == data[10:20]

    listed = json.loads(cli("--json", "object", "list", "backups", "--delimiter", "/").output)
    assert listed["prefixes"] == ["files/"]
    assert [o["name"] for o in listed["objects"]] == ["piped.tar"]
    assert cli("object", "copy", "backups/piped.tar", "backups/copy.tar").exit_code == 0
    assert cli("object", "delete", "backups/copy.tar").exit_code == 0

    missing = cli("object", "get", "backups/nothing", str(tmp_path / "nothing"))
    assert missing.exit_code != 0
    assert "not found" in missing.output
    assert not (tmp_path / "nothing").exists()
    assert cli("object", "put", "no-key-given", str(source)).exit_code != 0

    refused = cli("container", "delete", "backups")
    assert refused.exit_code != 0 and "409" in refused.output
    deleted = cli("container", "delete", "backups", "--recursive", "--wait")
    assert deleted.exit_code == 0, deleted.output
    assert "succeeded" in deleted.output
    assert json.loads(cli("--json", "container", "list").output)["containers"] == []


def test_balancers_from_the_cli(cli, service, tmp_path):
    need_haproxy()
    state_dir = tmp_path / "haproxy"
    service.add_balancer_account("alpha", "edge", state_dir=str(state_dir))
    node = service.create_node("app")
    try:
        port = free_port()
        made = cli(
            "--json", "balancer", "create", "front", "--port", str(port),
            "--node", node["id"], "--member-port", "8080", "--wait",
        )  # fmt: skip
        assert made.exit_code == 0, made.output
        balancer_id = json.loads(made.output)["balancer"]["id"]
        assert json.loads(made.output)["operation"]["status"] == "succeeded"
        listed = cli("balancer", "list")
        assert balancer_id in listed.output and str(port) in listed.output
        shown = cli("balancer", "show", balancer_id)
        assert node["id"] in shown.output and "attached" in shown.output

        attached = cli(
            "--json", "balancer", "attach", balancer_id, "--ip", "127.0.0.1",
            "--port", "9", "--weight", "2", "--wait",
        )  # fmt: skip
        assert attached.exit_code == 0, attached.output
        member_id = json.loads(attached.output)["member"]["id"]
        members = cli("--json", "balancer", "members", balancer_id)
        assert sorted(m["weight"] for m in json.loads(members.output)["members"]) == [1, 2]

        both = cli("balancer", "attach", balancer_id, "--node", node["id"], "--ip", "127.0.0.1")
        assert both.exit_code != 0 and "give a node" in both.output
        again = cli("balancer", "attach", balancer_id, "--ip", "127.0.0.1", "--port", "9")
        assert again.exit_code != 0 and "already has member" in again.output
        assert "Traceback" not in again.output

        detached = cli("balancer", "detach", balancer_id, member_id, "--wait")
        assert detached.exit_code == 0 and "succeeded" in detached.output, detached.output
        deleted = cli("balancer", "delete", balancer_id, "--wait")
        assert deleted.exit_code == 0 and "succeeded" in deleted.output, deleted.output
        assert cli("balancer", "show", balancer_id).exit_code != 0
    finally:
        destroy_balancers(state_dir)


def test_deployments_from_the_cli_are_checked_before_they_run(cli, service, tmp_path):
    node = service.create_node("box")
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\ntrue\n")
    bad = cli("node", "deploy", node["id"], "--fetch", "no-target")
    assert bad.exit_code != 0 and "container/key:/target" in bad.output
    nothing = cli("node", "deploy", node["id"])
    assert nothing.exit_code != 0 and "give --fetch" in nothing.output
    unknown = cli("node", "deploy", node["id"], "--fetch", "nope/app.py:/srv/app.py")
    assert unknown.exit_code != 0 and "container nope not found" in unknown.output
    started = cli(
        "--json", "node", "deploy", node["id"], "--script", str(script),
        "--env", "MODE=demo", "--cwd", "/tmp", "--user", "ops",
    )  # fmt: skip
    assert started.exit_code == 0, started.output
    assert json.loads(started.output)["action"] == "deploy"
    spec = service.node(node["id"])["deployment"]
    assert spec["status"] in ("pending", "failed")  # the dummy node has no sshd to reach

"""``overcast node exec`` over five local nodes through a real API server,
which logs in with the keys it holds and streams the output back."""

from __future__ import annotations

import getpass
import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.cli.client import main
from tests.functional.harness import (
    Service,
    cli_environment,
    service_config,
    start_service,
    stop_service,
)
from tests.helpers import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def api(tmp_path: Path, local_state_dir: Path) -> Iterator[tuple[Service, dict[str, str]]]:
    service = start_service(service_config(tmp_path))
    try:
        with cli_environment(service) as env:
            service.add_account("alpha", "local", provider="local", state_dir=str(local_state_dir))
            yield service, env
    finally:
        stop_service(service)


def sshd_pid(state_dir: Path, address: str) -> int:
    for record in state_dir.glob("*/node.json"):
        if json.loads(record.read_text())["address"] == address:
            return int((record.parent / "sshd.pid").read_text())
    raise AssertionError(f"no local node at {address}")


def listening(node: dict) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((node["private_ips"][0], node["ssh_port"])) == 0


def test_a_command_runs_on_every_node_and_a_dead_one_fails_the_run(api, local_state_dir):
    service, env = api
    nodes = [
        service.create_node(
            f"web-{index}",
            key="member",
            image="host",
            providers=["local"],
            group="web",
            deploy={"ssh_username": getpass.getuser(), "script": "#!/bin/sh\ntrue\n"},
        )
        for index in range(5)
    ]
    runner = CliRunner()

    ran = runner.invoke(
        main, ["node", "exec", "--all", "--", "sh", "-c", "echo $(hostname) up"], env=env
    )
    assert ran.exit_code == 0, ran.output
    answers = sorted(line for line in ran.output.splitlines() if line.startswith("[web-"))
    assert answers == [f"[web-{i}] {socket.gethostname()} up" for i in range(5)]
    assert "5 ok, 0 failed" in ran.output

    os.kill(sshd_pid(local_state_dir, nodes[2]["private_ips"][0]), signal.SIGTERM)
    wait_for(lambda: not listening(nodes[2]), what="web-2's sshd gone")
    failed = runner.invoke(
        main, ["node", "exec", "--group", "web", "--parallel", "2", "--", "false"], env=env
    )
    assert failed.exit_code != 0
    assert "web-2: FAILED (" in failed.output and "web-0: FAILED (exit 1)" in failed.output
    lone = runner.invoke(main, ["node", "exec", "--node", nodes[0]["id"], "--", "true"], env=env)
    assert lone.exit_code == 0 and "1 ok, 0 failed" in lone.output

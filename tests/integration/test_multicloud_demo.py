"""The shipped multi-cloud demo (``examples/multicloud-demo/demo.py``) against
a real ``overcast-all-in-one`` process: local storage, two local nodes and a
HAProxy balancer; then again with the nodes at two different accounts."""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import destroy_balancers, need, need_haproxy, stop_process_group, wait_for
from tests.integration.conftest import sshd_processes
from tests.integration.deployment import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def all_in_one(tmp_path: Path) -> Iterator[dict[str, str]]:
    need_haproxy()
    need(bool(os.path.exists("/usr/sbin/sshd")), "OpenSSH sshd")
    state = tmp_path / "state"
    port = free_port()
    env = {
        **os.environ,
        "OVERCAST_API__BIND": f"127.0.0.1:{port}",
        "OVERCAST_SERVICE__STATE_DIR": str(state),
        "OVERCAST_DATABASE__CONNECTION": f"sqlite:///{state}/overcast.sqlite",
        "OVERCAST_CLIENT_CONFIG": "/nonexistent",
    }
    log = tmp_path / "all-in-one.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(BIN / "overcast-all-in-one")],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        key = wait_for(
            lambda: re.search(r"OVERCAST_KEY=(\S+)", log.read_text()),
            timeout=60,
            what="the all-in-one's key",
        ).group(1)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(f"{url}/healthz", timeout=2).ok, what="the API")
        yield {**env, "OVERCAST_URL": url, "OVERCAST_KEY": key}
    finally:
        stop_process_group(process, 20)
        destroy_balancers(state / "haproxy")
        for pid in sshd_processes(state / "local-nodes"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid_file in Path("/tmp").glob("demo-web-*.pid"):  # a run that failed midway
            with contextlib.suppress(ValueError, ProcessLookupError, FileNotFoundError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
        for left in Path("/tmp").glob("demo-web-*"):
            left.unlink(missing_ok=True)


def demo(env: dict[str, str], *args: str) -> collections.Counter[str]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "multicloud-demo" / "demo.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    answers = re.findall(r"^\s*(\d+)  (Hello World from \S+)$", done.stdout, re.M)
    return collections.Counter({text: int(count) for count, text in answers})


def test_the_demo_balances_two_fresh_servers_on_one_account_then_on_two(all_in_one):
    first = demo(all_in_one, "--port", str(free_port()), "--cleanup")
    assert sum(first.values()) == 200 and len(first) == 2, first
    assert all(80 <= count <= 120 for count in first.values()), first

    other = requests.post(
        f"{all_in_one['OVERCAST_URL']}/v1/accounts",
        headers={"Authorization": f"Bearer {all_in_one['OVERCAST_KEY']}"},
        json={
            "name": "local-2",
            "provider": "local",
            "services": ["compute"],
            "options": {
                "state_dir": str(Path(all_in_one["OVERCAST_SERVICE__STATE_DIR"]) / "local-nodes")
            },
        },
        timeout=10,
    )
    assert other.status_code == 201, other.text
    wait_for(lambda: offers_of(all_in_one, "local-2"), timeout=60, what="local-2's catalog")
    second = demo(
        all_in_one, "--accounts", "local,local-2", "--port", str(free_port()), "--cleanup"
    )
    assert sum(second.values()) == 200 and len(second) == 2, second
    assert all(80 <= count <= 120 for count in second.values()), second


def offers_of(env: dict[str, str], account_name: str) -> bool:
    headers = {"Authorization": f"Bearer {env['OVERCAST_KEY']}"}
    accounts = requests.get(f"{env['OVERCAST_URL']}/v1/accounts", headers=headers, timeout=10)
    account = next(a for a in accounts.json()["accounts"] if a["name"] == account_name)
    return account["catalog_synced_at"] is not None

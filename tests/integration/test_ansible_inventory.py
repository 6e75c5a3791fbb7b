"""``overcast inventory --ansible`` read by the real Ansible: three local
nodes, grouped, and ``ansible all -m ping`` through them with the user's
own key."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.common.ssh_keys import generate_key_pair
from tests.functional.harness import (
    Service,
    cli_environment,
    service_config,
    start_service,
    stop_service,
)
from tests.helpers import need

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


@pytest.fixture
def api(tmp_path: Path, local_state_dir: Path) -> Iterator[tuple[Service, dict[str, str]]]:
    need((BIN / "ansible").exists() or shutil.which("ansible") is not None, "ansible-core")
    service = start_service(service_config(tmp_path))
    try:
        with cli_environment(service) as cli_env:
            service.add_account("alpha", "local", provider="local", state_dir=str(local_state_dir))
            env = {
                **os.environ,
                **cli_env,
                "ANSIBLE_HOST_KEY_CHECKING": "False",
                "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
                "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote"),
                "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
                "LC_ALL": "C.UTF-8",
            }
            yield service, env
    finally:
        stop_service(service)


def test_ansible_reads_the_inventory_and_pings_three_local_nodes(api, tmp_path):
    service, env = api
    private_key, public_key = generate_key_pair()
    key_file = tmp_path / "id_ed25519"
    key_file.write_text(private_key)
    key_file.chmod(0o600)
    for index in range(3):
        service.create_node(
            f"web-{index}",
            key="member",
            image="host",
            providers=["local"],
            group="web" if index < 2 else "db",
            ssh_public_key=public_key,
            deploy={"ssh_username": getpass.getuser(), "script": "#!/bin/sh\ntrue\n"},
        )
    script = tmp_path / "overcast-inventory"
    script.write_text(f'#!/bin/sh\nexec {BIN / "overcast"} inventory --ansible "$@"\n')
    script.chmod(0o755)

    listed = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(script), "--list"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    seen = json.loads(listed.stdout)
    assert sorted(seen["group_web"]["hosts"]) == ["web-0", "web-1"]
    assert seen["group_db"]["hosts"] == ["web-2"]
    assert sorted(seen["provider_local"]["hosts"]) == ["web-0", "web-1", "web-2"]
    assert seen["_meta"]["hostvars"]["web-0"]["ansible_user"] == getpass.getuser()

    pinged = subprocess.run(
        [str(BIN / "ansible"), "all", "-i", str(script), "-m", "ping",
         "--private-key", str(key_file), "-o"],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert pinged.returncode == 0, pinged.stdout + pinged.stderr
    assert pinged.stdout.count('"ping": "pong"') == 3, pinged.stdout

"""A real Keystone (v3, SQLite, fernet tokens) on 127.0.0.1, served by gunicorn.

Keystone lives in its own virtualenv (``.venv-keystone``, made by ``make
test``) so its pinned dependencies never meet ours. ``gunicorn
keystone.wsgi.api:application`` crash-loops because oslo.config parses
gunicorn's arguments, so a tiny wrapper module sets ``OS_KEYSTONE_CONFIG_FILES``
and clears ``sys.argv`` around the import.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.helpers import need, stop_process_group, wait_for

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("OVERCAST_TEST_KEYSTONE_VENV", ROOT / ".venv-keystone"))
REGION = "RegionOne"
ADMIN_PASSWORD = "admin-s3cret"
USER_PASSWORD = "user-s3cret"

CONFIG = """\
[DEFAULT]
log_file = {dir}/keystone.log
[database]
connection = sqlite:///{dir}/keystone.db
[token]
provider = fernet
expiration = {expiration}
[fernet_tokens]
key_repository = {dir}/fernet-keys
[fernet_receipts]
key_repository = {dir}/fernet-receipts
[credential]
key_repository = {dir}/credential-keys
"""

WRAPPER = """\
import os, sys
os.environ["OS_KEYSTONE_CONFIG_FILES"] = {config!r}
_argv, sys.argv = sys.argv, [sys.argv[0]]
from keystone.wsgi.api import application  # noqa: E402
sys.argv = _argv
"""


@dataclass(frozen=True)
class Keystone:
    url: str
    project_id: str
    username: str
    password: str
    application_credential_id: str
    application_credential_secret: str
    token_expiration: int


def _manage(directory: Path, *args: str) -> None:
    subprocess.run(
        [
            str(VENV / "bin" / "keystone-manage"),
            "--config-file",
            str(directory / "keystone.conf"),
            *args,
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )


def _admin_token(url: str) -> str:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": "admin",
                        "domain": {"id": "default"},
                        "password": ADMIN_PASSWORD,
                    }
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
    }
    answer = requests.post(f"{url}/auth/tokens", json=body, timeout=30)
    answer.raise_for_status()
    return answer.headers["X-Subject-Token"]


def _post(url: str, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = requests.post(f"{url}/{path}", json=body, headers={"X-Auth-Token": token}, timeout=30)
    answer.raise_for_status()
    return dict(answer.json())


def _setup(url: str, services: dict[str, tuple[str, str]]) -> dict[str, str]:
    """A project, a member user, catalog entries and an application credential."""
    admin = _admin_token(url)
    project = _post(
        url, admin, "projects", {"project": {"name": "overcast", "domain_id": "default"}}
    )["project"]
    user = _post(
        url,
        admin,
        "users",
        {"user": {"name": "overcast", "domain_id": "default", "password": USER_PASSWORD}},
    )["user"]
    roles = requests.get(f"{url}/roles", headers={"X-Auth-Token": admin}, timeout=30).json()
    member = next(role for role in roles["roles"] if role["name"] in ("member", "admin"))
    requests.put(
        f"{url}/projects/{project['id']}/users/{user['id']}/roles/{member['id']}",
        headers={"X-Auth-Token": admin},
        timeout=30,
    ).raise_for_status()
    for service_type, (name, endpoint_url) in services.items():
        service = _post(url, admin, "services", {"service": {"type": service_type, "name": name}})[
            "service"
        ]
        _post(
            url,
            admin,
            "endpoints",
            {
                "endpoint": {
                    "service_id": service["id"],
                    "interface": "public",
                    "region_id": REGION,
                    "url": endpoint_url,
                }
            },
        )
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": "overcast",
                        "domain": {"id": "default"},
                        "password": USER_PASSWORD,
                    }
                },
            },
            "scope": {"project": {"id": project["id"]}},
        }
    }
    answer = requests.post(f"{url}/auth/tokens", json=body, timeout=30)
    answer.raise_for_status()
    credential = _post(
        url,
        answer.headers["X-Subject-Token"],
        f"users/{user['id']}/application_credentials",
        {"application_credential": {"name": "overcast-ci"}},
    )
    return {
        "project_id": project["id"],
        "credential_id": credential["application_credential"]["id"],
        "credential_secret": credential["application_credential"]["secret"],
    }


@contextmanager
def keystone(
    directory: Path, port: int, services: dict[str, tuple[str, str]], token_expiration: int = 8
) -> Iterator[Keystone]:
    need((VENV / "bin" / "keystone-manage").exists(), f"Keystone in {VENV} (make test installs it)")
    url = f"http://127.0.0.1:{port}/v3"
    (directory / "keystone.conf").write_text(
        CONFIG.format(dir=directory, expiration=token_expiration)
    )
    (directory / "ks_app.py").write_text(WRAPPER.format(config=str(directory / "keystone.conf")))
    _manage(directory, "db_sync")
    for setup in ("fernet_setup", "credential_setup"):
        _manage(directory, setup, "--keystone-user", "root", "--keystone-group", "root")
    with suppress(subprocess.CalledProcessError):
        _manage(
            directory,
            "fernet_receipts_setup",
            "--keystone-user",
            "root",
            "--keystone-group",
            "root",
        )
    _manage(
        directory,
        "bootstrap",
        "--bootstrap-password",
        ADMIN_PASSWORD,
        "--bootstrap-admin-url",
        url,
        "--bootstrap-public-url",
        url,
        "--bootstrap-region-id",
        REGION,
    )
    log = open(directory / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            str(VENV / "bin" / "gunicorn"),
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "2",
            "--chdir",
            str(directory),
            "ks_app:application",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: _answers(url), timeout=60, interval=0.2, what="Keystone")
        made = _setup(url, services)
        yield Keystone(
            url=url,
            project_id=made["project_id"],
            username="overcast",
            password=USER_PASSWORD,
            application_credential_id=made["credential_id"],
            application_credential_secret=made["credential_secret"],
            token_expiration=token_expiration,
        )
    finally:
        stop_process_group(process, timeout=15)
        log.close()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False

"""A real OpenStack Swift on 127.0.0.1 (Debian's swift packages), all in one:
memcached, one account, container and object server on one device with one
replica, and a proxy with tempauth, tempurl, copy and SLO -- started from a
scratch directory and stopped by the test."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import textwrap
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.helpers import need, stop_process_group, wait_for

SERVERS = ("account", "container", "object")
USER, KEY, ACCOUNT = "test:tester", "testing", "AUTH_test"


@dataclass(frozen=True)
class Swift:
    url: str  # the proxy
    auth_url: str  # tempauth's v1.0 endpoint
    user: str
    key: str
    storage_url: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(directory: Path, server: str, port: int, memcached: int, extra: str = "") -> Path:
    common = f"""
        [DEFAULT]
        bind_ip = 127.0.0.1
        bind_port = {port}
        workers = 0
        user = {getpass.getuser()}
        swift_dir = {directory}
        devices = {directory}/devices
        mount_check = false
        log_level = WARNING
    """
    if server == "proxy":
        body = f"""
        [pipeline:main]
        pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats
            tempurl tempauth copy slo dlo proxy-logging proxy-server

        [app:proxy-server]
        use = egg:swift#proxy
        account_autocreate = true

        [filter:tempauth]
        use = egg:swift#tempauth
        user_test_tester = {KEY} .admin

        [filter:cache]
        use = egg:swift#memcache
        memcache_servers = 127.0.0.1:{memcached}

        [filter:catch_errors]
        use = egg:swift#catch_errors

        [filter:gatekeeper]
        use = egg:swift#gatekeeper

        [filter:healthcheck]
        use = egg:swift#healthcheck

        [filter:proxy-logging]
        use = egg:swift#proxy_logging

        [filter:listing_formats]
        use = egg:swift#listing_formats

        [filter:tempurl]
        use = egg:swift#tempurl

        [filter:copy]
        use = egg:swift#copy

        [filter:slo]
        use = egg:swift#slo

        [filter:dlo]
        use = egg:swift#dlo
        """
    else:
        body = f"""
        [pipeline:main]
        pipeline = {server}-server

        [app:{server}-server]
        use = egg:swift#{server}
        """
    path = directory / f"{server}-server.conf"
    path.write_text(textwrap.dedent(common) + textwrap.dedent(body) + extra)
    return path


@contextmanager
def swift_server(workdir: Path) -> Iterator[Swift]:
    proxy_binary = shutil.which("swift-proxy-server")
    memcached_binary = shutil.which("memcached")
    need(
        proxy_binary is not None and memcached_binary is not None,
        "OpenStack Swift and memcached (apt-get install swift-proxy swift-account "
        "swift-container swift-object memcached)",
    )
    directory = workdir / "swift"
    (directory / "devices" / "d1").mkdir(parents=True)
    (directory / "swift.conf").write_text(
        "[swift-hash]\nswift_hash_path_suffix = overcast\nswift_hash_path_prefix = tests\n"
        "[storage-policy:0]\nname = gold\ndefault = yes\n"
    )
    ports = {server: free_port() for server in (*SERVERS, "proxy", "memcached")}
    for server in SERVERS:
        builder = str(directory / f"{server}.builder")
        for command in (
            ["create", "6", "1", "1"],
            ["add", f"r1z1-127.0.0.1:{ports[server]}/d1", "1"],
            ["rebalance"],
        ):
            subprocess.run(
                ["swift-ring-builder", builder, *command],
                check=command[0] != "rebalance",  # rebalance exits 1 on warnings
                capture_output=True,
            )
    with ExitStack() as stack:
        log = stack.enter_context(open(workdir / "swift.log", "wb"))

        def start(*command: str) -> None:
            process = subprocess.Popen(
                list(command),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            stack.callback(stop_process_group, process, 10)

        memcached = ports["memcached"]
        start(
            str(memcached_binary),
            "-l",
            "127.0.0.1",
            "-p",
            str(memcached),
            "-U",
            "0",
            "-u",
            getpass.getuser(),
        )
        for server in (*SERVERS, "proxy"):
            config = _config(directory, server, ports[server], ports["memcached"])
            start(f"swift-{server}-server", str(config))
        url = f"http://127.0.0.1:{ports['proxy']}"
        wait_for(lambda: _healthy(url), timeout=60, interval=0.2, what="the Swift proxy")
        yield Swift(url, f"{url}/auth/v1.0", USER, KEY, f"{url}/v1/{ACCOUNT}")


def _healthy(url: str) -> bool:
    try:
        answer = requests.get(
            f"{url}/auth/v1.0", headers={"X-Auth-User": USER, "X-Auth-Key": KEY}, timeout=2
        )
    except requests.RequestException:
        return False
    if not answer.ok:
        return False
    token = answer.headers["X-Auth-Token"]
    try:
        return requests.head(
            answer.headers["X-Storage-Url"], headers={"X-Auth-Token": token}, timeout=2
        ).status_code in (200, 204)
    except requests.RequestException:
        return False

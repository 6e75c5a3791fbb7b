"""A real moto_server on 127.0.0.1 with EC2 validation and IAM authentication on."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from drivers.storage.s3 import S3StorageDriver
from tests.helpers import need, stop_process_group, wait_for

#: Unauthenticated actions moto allows before it enforces IAM: the four below.
SETUP_ACTIONS = 4
ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@dataclass(frozen=True)
class Moto:
    url: str
    access_key: str
    secret_key: str


def moto_binary() -> str | None:
    candidate = Path(sys.executable).parent / "moto_server"
    return str(candidate) if candidate.exists() else shutil.which("moto_server")


@contextmanager
def moto_server(log_dir: Path, *, authenticated: bool = True) -> Iterator[Moto]:
    """moto_server with IAM authentication on (or, for benchmarks that compare
    clients whose signing moto cannot judge alike, off)."""
    binary = moto_binary()
    need(binary is not None, "moto_server (pip install 'moto[server]')")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "MOTO_ENABLE_AMI_VALIDATION": "true",
        "MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION": "true",
        "MOTO_ENABLE_KEYPAIR_VALIDATION": "true",
        "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_ACTIONS if authenticated else 10**12),
    }
    log = open(log_dir / "moto.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(url), timeout=30, interval=0.1, what="moto_server")
        yield Moto(url, *(_iam_user(url) if authenticated else ("bench", "bench")))
    finally:
        stop_process_group(process, timeout=10)
        log.close()


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/moto-api/", timeout=1).status_code < 500
    except requests.RequestException:
        return False


def _iam_user(url: str) -> tuple[str, str]:
    """Create a user with an access key allowed everything (the first 4 actions)."""
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    iam.create_user(UserName="overcast")
    key = iam.create_access_key(UserName="overcast")["AccessKey"]
    policy = iam.create_policy(PolicyName="everything", PolicyDocument=json.dumps(ALLOW_ALL))
    iam.attach_user_policy(UserName="overcast", PolicyArn=policy["Policy"]["Arn"])
    return key["AccessKeyId"], key["SecretAccessKey"]


def pending_uploads(driver: S3StorageDriver, bucket: str) -> list[str]:
    root = driver._xml(driver._call("GET", bucket, query={"uploads": ""}))
    return [element.text for element in root.iterfind("{*}Upload/{*}UploadId")]

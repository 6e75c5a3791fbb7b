"""Listing 1,000 EC2 instances: our driver against Libcloud's, one moto_server.

Starts moto_server on 127.0.0.1, creates 1,000 instances (10 reservations of
100, so one DescribeInstances page of ~3 MB), then for each client measures,
over several rounds in one run: wall time, the client's own CPU time (moto
runs in another process, so ``time.process_time`` excludes the server), and
the wall time of fetching the same raw pages with a bare signed POST (the
server and transfer share). Prints the medians and the client-time ratio.

    python bench/ec2_list.py [--instances 1000] [--rounds 7]

Two adjustments are needed to point Libcloud 3.9.1 at moto 5.2.5, both made
here: ``signature_version="4"`` (its default SigV2 requests are taken by moto
for S3 calls, and it silently lists 0 nodes), and moto omits the trailing
``/`` of the EC2 XML namespace that Libcloud expects, so its ``NAMESPACE``
constant is set to moto's.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine
from drivers.compute.ec2 import EC2NodeDriver
from drivers.compute.ec2.connection import API_VERSION
from drivers.compute.ec2.signing import Credentials, sign

KEY, SECRET, REGION = "AKIDBENCH", "bench-secret", "us-east-1"


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    binary = Path(sys.executable).parent / "moto_server"
    process = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"{url}/moto-api/", timeout=1)
            return process, url
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError("moto_server did not start")


def raw_pages(url: str) -> int:
    """Fetch every DescribeInstances page with a bare signed POST; returns bytes read."""
    total, token = 0, None
    while True:
        params = [("Action", "DescribeInstances"), ("Version", API_VERSION)]
        if token:
            params.append(("NextToken", token))
        body = urlencode(params).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        headers.update(
            sign("POST", f"{url}/", headers, body, Credentials(KEY, SECRET), REGION, "ec2")
        )
        response = requests.post(f"{url}/", data=body, headers=headers, timeout=120)
        total += len(response.content)
        marker = b"<nextToken>"
        start = response.content.find(marker)
        if start < 0:
            return total
        end = response.content.find(b"</nextToken>", start)
        token = response.content[start + len(marker) : end].decode()


def libcloud_driver(url: str) -> Any:
    import libcloud.compute.drivers.ec2 as libcloud_ec2

    libcloud_ec2.NAMESPACE = f"http://ec2.amazonaws.com/doc/{libcloud_ec2.API_VERSION}"
    host, port = url.removeprefix("http://").split(":")
    return libcloud_ec2.EC2NodeDriver(
        KEY, SECRET, secure=False, host=host, port=int(port), region=REGION, signature_version="4"
    )


def measure(function: Callable[[], Any], rounds: int) -> tuple[float, float, Any]:
    walls, cpus, result = [], [], None
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    process, url = start_moto()
    try:
        ours = EC2NodeDriver(KEY, SECRET, region=REGION, endpoint=url)
        theirs = libcloud_driver(url)
        image = "ami-1e749f67"
        for start in range(0, args.instances, 100):
            count = min(100, args.instances - start)  # moto launches MinCount instances
            ours.connection.call(
                "RunInstances",
                {
                    "ImageId": image,
                    "InstanceType": "t3.micro",
                    "MinCount": count,
                    "MaxCount": count,
                },
            )
        measure(ours.list_nodes, 1)  # warm both clients and the server
        measure(theirs.list_nodes, 1)

        raw_wall, raw_cpu, size = measure(lambda: raw_pages(url), args.rounds)
        our_wall, our_cpu, our_nodes = measure(ours.list_nodes, args.rounds)
        lib_wall, lib_cpu, lib_nodes = measure(theirs.list_nodes, args.rounds)
        assert len(our_nodes) == len(lib_nodes) == args.instances, (len(our_nodes), len(lib_nodes))
        print(
            f"{args.instances} instances, {size / 1e6:.1f} MB of XML per listing; medians of "
            f"{args.rounds} rounds"
        )
        print(f"{'':28}{'wall (s)':>10}{'client CPU (s)':>16}")
        print(f"{'raw signed POST pages':28}{raw_wall:10.3f}{raw_cpu:16.3f}   <- server + transfer")
        print(f"{'overcast list_nodes':28}{our_wall:10.3f}{our_cpu:16.3f}")
        print(f"{'libcloud 3.9.1 list_nodes':28}{lib_wall:10.3f}{lib_cpu:16.3f}")
        print(f"client CPU ratio overcast/libcloud: {our_cpu / lib_cpu:.2f} (target <= 0.33)")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


if __name__ == "__main__":
    main()

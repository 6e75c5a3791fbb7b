"""A small HTTP load generator (its own process): N keep-alive connections for S seconds.

    python bench/load.py URL --connections 32 --seconds 10 [--method POST --body JSON]
                         [--header 'Name: value'] ...

Prints one JSON line: requests, errors, requests/s, p50/p99 latency (ms).
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from urllib.parse import urlsplit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", default=None)
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args()
    parts = urlsplit(args.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = dict(header.split(": ", 1) for header in args.header)
    body = args.body.encode() if args.body else None
    if body:
        headers["Content-Type"] = "application/json"
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + args.seconds

    def client() -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        mine: list[float] = []
        failed = 0
        while time.monotonic() < deadline:
            began = time.perf_counter()
            try:
                connection.request(args.method, path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                if response.status >= 400:
                    failed += 1
            except (OSError, http.client.HTTPException):
                failed += 1
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                continue
            mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=client) for _ in range(args.connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    ordered = sorted(latencies)
    print(
        json.dumps(
            {
                "requests": len(ordered),
                "errors": errors[0],
                "rps": len(ordered) / elapsed,
                "p50_ms": ordered[len(ordered) // 2] * 1000 if ordered else None,
                "p99_ms": ordered[int(len(ordered) * 0.99)] * 1000 if ordered else None,
            }
        )
    )


if __name__ == "__main__":
    main()

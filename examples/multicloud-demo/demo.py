"""The multi-cloud demo, end to end, with the ``overcast`` CLI:

1. upload the demo application to object storage;
2. start two servers;
3. put the uploaded application on both and start it;
4. create a load balancer over the two;
5. test it: every request is answered "Hello World from <server name>".

On the all-in-one's defaults it uses the local storage account, two local
nodes and one HAProxy balancer. ``--accounts A,B`` places the two nodes at
two accounts (by name), ``--storage-account NAME`` uploads to another
storage account (an S3 one, say). ``--cleanup`` removes everything after.
Needs OVERCAST_URL and OVERCAST_KEY (an admin's: it reads the accounts).
"""

from __future__ import annotations

import argparse
import collections
import getpass
import json
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OVERCAST = shutil.which("overcast") or str(Path(sys.executable).parent / "overcast")


def overcast(*args: str) -> Any:
    """Run ``overcast --json ARGS``, showing it; its JSON answer."""
    print("$ overcast " + " ".join(args), flush=True)
    done = subprocess.run([OVERCAST, "--json", *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"overcast {args[0]} {args[1]} failed: {done.stdout}{done.stderr}".strip())
    return json.loads(done.stdout) if done.stdout.strip().startswith(("{", "[")) else done.stdout


def account(accounts: list[dict[str, Any]], name: str | None, kind: str) -> dict[str, Any]:
    for candidate in accounts:
        named = candidate["name"] == name if name else candidate["provider"] == "local"
        if kind in candidate["services"] and named:
            return candidate
    sys.exit(f"no {kind} account {name or 'at the local provider'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", help="Two compute accounts (names): one node at each.")
    parser.add_argument("--storage-account", help="Where to upload the app (name).")
    parser.add_argument("--port", type=int, default=8000, help="The balancer's port.")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--cleanup", action="store_true", help="Remove everything after.")
    args = parser.parse_args()
    accounts = overcast("account", "list")["accounts"]
    store = account(accounts, args.storage_account, "storage")
    placements = (args.accounts or "").split(",") if args.accounts else [None, None]
    run = uuid.uuid4().hex[:6]

    # 1. Upload the application.
    container = f"demo-{run}"
    overcast("container", "create", container, "--account", store["id"])
    overcast("object", "put", f"{container}/app.py", str(HERE / "app.py"))
    overcast("object", "put", f"{container}/start.sh", str(HERE / "start.sh"))

    # 2 and 3. Two servers, the application fetched onto each and started.
    nodes = []
    for index, placement in enumerate(placements, start=1):
        name = f"web-{run}-{index}"
        where = ["--account", placement] if placement else ["--provider", "local"]
        created = overcast(
            "node", "create", name, "--image", "host", *where, "--user", getpass.getuser(),
            "--fetch", f"{container}/app.py:/tmp/demo-{name}-app.py",
            "--script", str(HERE / "start.sh"),
            "--env", f"NODE_NAME={name}", "--env", "PORT=8080", "--cwd", "/tmp", "--wait",
        )  # fmt: skip
        nodes.append(created)
    ids = [node["id"] for node in nodes]

    # 4. A balancer over both.
    made = overcast(
        "balancer", "create", f"front-{run}", "--port", str(args.port),
        *[part for node_id in ids for part in ("--node", node_id)],
        "--member-port", "8080", "--check-path", "/", "--check-interval", "1", "--wait",
    )  # fmt: skip
    balancer_id = made["balancer"]["id"]
    deadline = time.monotonic() + 60
    while True:
        members = overcast("balancer", "members", balancer_id)["members"]
        if [m["health"] for m in members] == ["up", "up"]:
            break
        if time.monotonic() > deadline:
            sys.exit(f"the members did not come up: {members}")
        time.sleep(1)

    # 5. Test it.
    answers: collections.Counter[str] = collections.Counter()
    for _ in range(args.requests):
        with urllib.request.urlopen(f"http://127.0.0.1:{args.port}/", timeout=10) as reply:
            answers[reply.read().decode().strip()] += 1
    for text, count in sorted(answers.items()):
        print(f"{count:5d}  {text}")

    if args.cleanup:
        for node in nodes:
            files = f"/tmp/demo-{node['name']}"
            stop = f"kill $(cat {files}.pid); rm -f {files}*"
            overcast("node", "exec", "--node", node["id"], "--", "sh", "-c", stop)
        overcast("balancer", "delete", balancer_id, "--wait")
        for node_id in ids:
            overcast("node", "delete", node_id, "--wait")
        overcast("container", "delete", container, "--recursive", "--wait")


if __name__ == "__main__":
    main()

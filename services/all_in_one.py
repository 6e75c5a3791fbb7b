"""``overcast-all-in-one``: API + scheduler + worker in one process.

The embedded default: SQLite and kombu's in-process ``memory://`` queue,
with a demo project, an operator key and accounts registered at start:
dummy (compute), local (compute nodes as sshd processes, and object storage
in a directory) and, where Debian's haproxy is installed, edge (load
balancers as HAProxy processes). Nothing else to install.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from pathlib import Path

from services.api.server import ApiServer, listen
from services.common import bootstrap
from services.common.config import Config, load_config
from services.common.context import build_context
from services.common.crypto import generate_key
from services.common.db import migrate
from services.common.memory import return_big_buffers_to_the_system
from services.common.runner import Component, run_until_signalled, setup_logging
from services.scheduler.service import scheduler_components
from services.worker.service import worker_components

LOG = logging.getLogger(__name__)


def encryption_key(state_dir: Path) -> str:
    """The all-in-one's Fernet key, created on first start (file mode 0600)."""
    path = state_dir / "encryption.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            stream.write(generate_key())
    return path.read_text().strip()


def prepare(config: Config) -> tuple[Config, str, list[Component]]:
    """Migrate, bootstrap and build every component; returns the admin key."""
    state_dir = Path(config.service.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    if not config.security.encryption_key:
        config = config.replace(security={"encryption_key": encryption_key(state_dir)})
    migrate.upgrade(config.database.connection)
    context = build_context(config)
    project_id = bootstrap.ensure_project(context, "demo")
    admin_key = bootstrap.create_key(context, project_id, "all-in-one", "operator")
    sock = listen(config.api.bind)
    components: list[Component] = [
        *scheduler_components(context),
        *worker_components(context),
        ApiServer(context, sock),
    ]
    dummy_state = str((state_dir / "dummy-cloud.sqlite").resolve())
    bootstrap.ensure_account(
        context, project_id, "dummy", "dummy", {}, {"boot_delay": 1.0, "state_path": dummy_state}
    )
    bootstrap.ensure_account(
        context,
        project_id,
        "local",
        "local",
        {},
        {
            "state_dir": str((state_dir / "local-nodes").resolve()),
            "storage": {"root": str((state_dir / "objects").resolve())},
        },
    )
    if shutil.which("haproxy") or os.path.exists("/usr/sbin/haproxy"):
        bootstrap.ensure_account(
            context,
            project_id,
            "edge",
            "haproxy",
            {},
            {"loadbalancer": {"state_dir": str((state_dir / "haproxy").resolve())}},
        )
    return config, admin_key, components


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="overcast-all-in-one", description=__doc__)
    parser.add_argument("--config-file", help="INI file (see etc/overcast/overcast.conf.sample)")
    args = parser.parse_args(argv)
    config = load_config(args.config_file)
    setup_logging(config.service.log_level)
    return_big_buffers_to_the_system()
    config, admin_key, components = prepare(config)
    host, _, port = config.api.bind.rpartition(":")
    url = f"http://{host or '127.0.0.1'}:{port}"
    print(
        f"\nOvercast all-in-one is running on {url}\n"
        "In another shell:\n"
        f"  export OVERCAST_URL={url}\n"
        f"  export OVERCAST_KEY={admin_key}\n"
        "  .venv/bin/overcast offer list --min-ram 4096 --exclude-country US\n",
        file=sys.stderr,
        flush=True,
    )
    run_until_signalled(components)

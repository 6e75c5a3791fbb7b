"""Logging in to a node with the key Overcast holds for it: the one rule the
deploying worker and the API's ``exec`` share. The private key is decrypted
only in the service process that uses it and never leaves it; the node's
host key is trusted on first use and must match afterwards."""

from __future__ import annotations

from dataclasses import dataclass

from drivers.compute.base import Node as DriverNode
from drivers.compute.base import NodeState
from services.common.context import ServiceContext
from services.common.db.models import Node


class NodeHostKey:
    """A one-node host key store backed by the node row."""

    def __init__(self, node_id: str, known: str | None) -> None:
        self.node_id = node_id
        self.known = known

    def get(self, node_id: str) -> str | None:
        return self.known if node_id == self.node_id else None

    def record(self, node_id: str, host_key: str) -> None:
        if node_id == self.node_id and self.known is None:
            self.known = host_key


@dataclass(frozen=True)
class Login:
    """What it takes to reach a node over SSH (read inside a session)."""

    target: DriverNode
    username: str
    private_key: str
    host_keys: NodeHostKey


def login_of(context: ServiceContext, node: Node, username: str | None = None) -> Login | None:
    """The login for ``node``, or None when Overcast holds no key for it."""
    if node.ssh_private_key is None:
        return None
    return Login(
        target=DriverNode(
            id=node.id,
            name=node.name,
            state=NodeState.RUNNING,
            provider=node.provider or "",
            public_ips=tuple(node.public_ips),
            private_ips=tuple(node.private_ips),
            ssh_port=node.ssh_port or 22,
        ),
        username=username or (node.spec.get("deploy") or {}).get("ssh_username") or "root",
        private_key=context.cipher.decrypt(node.ssh_private_key)["private_key"],
        host_keys=NodeHostKey(node.id, node.host_key),
    )

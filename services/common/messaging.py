"""Every queue and every message, in one place.

Messages are small JSON envelopes ``{id, type, version, request_id, sent_at,
payload}``. Changes are additive only; a breaking change is a new type.
Queues are durable, messages persistent, and RabbitMQ publishes wait for
publisher confirms. Consumers ack only after their handler committed
(``services/common/consumer.py``).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from kombu import Connection, Exchange, Queue
from kombu.pools import ProducerPool

from services.common.config import MessagingSection
from services.common.errors import BrokerUnavailable

LOG = logging.getLogger(__name__)

EXCHANGE = Exchange("overcast", type="direct", durable=True)
DEAD_EXCHANGE = Exchange("overcast.dead", type="direct", durable=True)

QUEUES: dict[str, Queue] = {
    "scheduler": Queue("overcast.scheduler", EXCHANGE, routing_key="scheduler", durable=True),
    "worker": Queue("overcast.worker", EXCHANGE, routing_key="worker", durable=True),
    "dead": Queue("overcast.dead", DEAD_EXCHANGE, routing_key="dead", durable=True),
}

#: type -> (queue, required payload fields)
MESSAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "schedule_node": ("scheduler", ("node_id", "operation_id")),
    "build_node": ("worker", ("node_id", "operation_id")),
    "reboot_node": ("worker", ("node_id", "operation_id")),
    "start_node": ("worker", ("node_id", "operation_id")),
    "stop_node": ("worker", ("node_id", "operation_id")),
    "destroy_node": ("worker", ("node_id", "operation_id")),
    "deploy_node": ("worker", ("node_id", "operation_id")),
    "sync_catalog": ("worker", ("account_id",)),
    "delete_container": ("worker", ("container_id", "operation_id")),
    "copy_object": (
        "worker",
        ("operation_id", "source_container_id", "source_key", "container_id", "key"),
    ),
    "create_balancer": ("worker", ("balancer_id", "operation_id")),
    "delete_balancer": ("worker", ("balancer_id", "operation_id")),
    "attach_member": ("worker", ("member_id", "operation_id")),
    "detach_member": ("worker", ("member_id", "operation_id")),
}

VERSION = 1


class InvalidMessage(ValueError):
    """A message body that is not one of ours."""


@dataclass(frozen=True)
class Envelope:
    type: str
    payload: dict[str, Any]
    request_id: str
    version: int = VERSION
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    sent_at: float = field(default_factory=time.time)

    @property
    def queue(self) -> str:
        return MESSAGES[self.type][0]

    def to_body(self) -> dict[str, Any]:
        return asdict(self)


def message(type: str, request_id: str, **payload: Any) -> Envelope:
    """Build a message of a known type; raises ``InvalidMessage`` if fields lack."""
    envelope = Envelope(type=type, payload=payload, request_id=request_id)
    validate(envelope)
    return envelope


def validate(envelope: Envelope) -> None:
    if envelope.type not in MESSAGES:
        raise InvalidMessage(f"unknown message type {envelope.type!r}")
    missing = [name for name in MESSAGES[envelope.type][1] if name not in envelope.payload]
    if missing:
        raise InvalidMessage(f"{envelope.type} lacks {', '.join(missing)}")


def parse(body: Any) -> Envelope:
    """Parse a received body (dict or JSON text) into an :class:`Envelope`."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError:
            raise InvalidMessage("body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidMessage("body is not an object")
    try:
        envelope = Envelope(
            type=body["type"],
            payload=dict(body["payload"]),
            request_id=str(body["request_id"]),
            version=int(body.get("version", VERSION)),
            id=str(body.get("id", "")),
            sent_at=float(body.get("sent_at", 0.0)),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidMessage(f"malformed envelope: {error}") from None
    validate(envelope)
    return envelope


def connect(section: MessagingSection) -> Connection:
    """A kombu connection with our transport options."""
    url = section.transport_url
    if url.rstrip("/") == "memory:":
        url = "memory://localhost/"  # same broker; kombu warns when no host is given
    return Connection(
        url,
        connect_timeout=section.connect_timeout,
        transport_options={
            "polling_interval": section.polling_interval,
            "confirm_publish": True,
        },
        heartbeat=30 if section.transport_url.startswith(("amqp", "pyamqp")) else 0,
    )


class Publisher:
    """Thread-safe publishing through a pool of producers (one per thread in use)."""

    def __init__(self, section: MessagingSection, pool_size: int = 32) -> None:
        self.section = section
        self.connection = connect(section)
        self._connections = self.connection.Pool(limit=pool_size)
        self._producers = ProducerPool(self._connections, limit=pool_size)

    def publish(
        self,
        envelope: Envelope | dict[str, Any],
        *,
        queue: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> None:
        """Publish persistently; raises :class:`BrokerUnavailable` if it cannot."""
        body = envelope.to_body() if isinstance(envelope, Envelope) else envelope
        queue_name = queue or MESSAGES[body["type"]][0]
        target = QUEUES[queue_name]
        try:
            with self._producers.acquire(block=True, timeout=10) as producer:
                producer.publish(
                    body,
                    exchange=target.exchange,
                    routing_key=target.routing_key,
                    declare=[target],
                    serializer="json",
                    delivery_mode=2,
                    headers=headers or {},
                    retry=True,
                    retry_policy={
                        "max_retries": 2,
                        "interval_start": 0.1,
                        "interval_step": 0.5,
                        "interval_max": 1.0,
                    },
                )
        except Exception as error:  # kombu raises transport-specific errors
            LOG.warning(
                "publish of %s to %s failed: %s", body.get("type"), queue_name, type(error).__name__
            )
            raise BrokerUnavailable() from error

    def check(self) -> None:
        """Raise :class:`BrokerUnavailable` unless the broker answers now."""
        probe = connect(self.section)
        try:
            probe.ensure_connection(max_retries=1, timeout=self.section.connect_timeout)
        except Exception as error:
            raise BrokerUnavailable() from error
        finally:
            probe.release()

    def close(self) -> None:
        self._producers.force_close_all()
        self._connections.force_close_all()
        self.connection.release()

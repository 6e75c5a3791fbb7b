"""Consuming a queue: bounded prefetch, a native-thread pool, ack after commit.

kombu channels are not thread-safe, so handlers run in a pool while every
ack, requeue and republish happens back on the consumer's own thread. A
handler that returns has committed its work: the message is acked. A handler
that raises has its message republished with an attempt count; after
``max_deliveries`` attempts it goes to the dead-letter queue and
``on_dead`` marks its operation failed. Broker outages are ridden out by
kombu's reconnect loop; unacked messages come back from the broker.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kombu import Connection
from kombu.message import Message
from kombu.mixins import ConsumerMixin

from services.common import metrics
from services.common.config import MessagingSection
from services.common.errors import Unavailable
from services.common.messaging import QUEUES, Envelope, InvalidMessage, Publisher, connect, parse

LOG = logging.getLogger(__name__)

Handler = Callable[[Envelope], None]
DeadHandler = Callable[[Envelope | None, str], None]

ATTEMPTS_HEADER = "x-overcast-attempts"


@dataclass(frozen=True)
class _Outcome:
    message: Message
    envelope: Envelope | None
    error: BaseException | None


class QueueConsumer(ConsumerMixin):  # type: ignore[misc]  # kombu is untyped
    """Consume one queue with ``handler`` in a pool of ``pool_size`` threads."""

    def __init__(
        self,
        section: MessagingSection,
        queue_name: str,
        handler: Handler,
        *,
        publisher: Publisher,
        pool_size: int,
        on_dead: DeadHandler,
        unavailable_backoff: float = 1.0,
    ) -> None:
        self.connection: Connection = connect(section)
        self.queue = QUEUES[queue_name]
        self.handler = handler
        self.publisher = publisher
        self.section = section
        self.on_dead = on_dead
        self.unavailable_backoff = unavailable_backoff
        self.prefetch = max(1, min(section.prefetch, pool_size * 2))
        self.pool = ThreadPoolExecutor(pool_size, thread_name_prefix=f"{queue_name}-handler")
        self._done: queue.SimpleQueue[_Outcome] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()

    def get_consumers(self, consumer_class: Any, channel: Any) -> list[Any]:
        return [
            consumer_class(
                queues=[self.queue],
                callbacks=[self._received],
                accept=["json"],
                prefetch_count=self.prefetch,
            )
        ]

    def on_consume_ready(
        self, connection: Any, channel: Any, consumers: Any, **kwargs: Any
    ) -> None:
        self.ready.set()

    def on_connection_error(self, exc: BaseException, interval: float) -> None:
        LOG.warning("broker connection lost (%s); retrying in %.1fs", type(exc).__name__, interval)

    def _received(self, body: Any, message: Message) -> None:
        try:
            envelope = parse(body)
        except InvalidMessage as error:
            metrics.count_message(self.queue.routing_key, "dead")
            self._dead_letter(message, None, f"invalid message: {error}")
            return
        future = self.pool.submit(self._run, envelope)
        future.add_done_callback(lambda done: self._finished(done, message, envelope))

    def _run(self, envelope: Envelope) -> None:
        try:
            self.handler(envelope)
        except Unavailable:
            # The database or broker is down: wait here, then let the message
            # be requeued without counting it as a failed attempt.
            time.sleep(self.unavailable_backoff)
            raise

    def _finished(self, future: Future[None], message: Message, envelope: Envelope) -> None:
        if future.cancelled():
            return  # shutting down: the broker redelivers the unacked message
        self._done.put(_Outcome(message, envelope, future.exception()))

    def on_iteration(self) -> None:
        while True:
            try:
                outcome = self._done.get_nowait()
            except queue.Empty:
                return
            self._settle(outcome)

    def _settle(self, outcome: _Outcome) -> None:
        message, envelope, error = outcome.message, outcome.envelope, outcome.error
        metrics.count_message(self.queue.routing_key, "consumed" if error is None else "failed")
        try:
            if error is None:
                message.ack()
            elif isinstance(error, Unavailable):
                message.requeue()
            else:
                self._retry_or_dead_letter(message, envelope, error)
        except Exception as settle_error:  # the channel died: the broker redelivers
            LOG.warning("could not settle message: %s", type(settle_error).__name__)

    def _retry_or_dead_letter(
        self, message: Message, envelope: Envelope | None, error: BaseException
    ) -> None:
        attempts = int((message.headers or {}).get(ATTEMPTS_HEADER, 0)) + 1
        reason = f"{type(error).__name__}: {error}"
        type_name = envelope.type if envelope else "?"
        if attempts >= self.section.max_deliveries:
            LOG.error(
                "message %s failed %d times, dead-lettering: %s",
                type_name,
                attempts,
                reason,
                exc_info=error,
            )
            metrics.count_message(self.queue.routing_key, "dead")
            self._dead_letter(message, envelope, reason)
            return
        LOG.warning(
            "message %s failed (attempt %d): %s", type_name, attempts, reason, exc_info=error
        )
        try:
            self.publisher.publish(
                message.payload, queue=self.queue.routing_key, headers={ATTEMPTS_HEADER: attempts}
            )
        except Unavailable:
            message.requeue()
            return
        message.ack()

    def _dead_letter(self, message: Message, envelope: Envelope | None, reason: str) -> None:
        try:
            self.publisher.publish(
                {"reason": reason, "original": _safe_body(message)},
                queue="dead",
            )
        except Unavailable:
            LOG.warning("dead-lettering failed: broker unavailable; requeueing")
            message.requeue()
            return
        message.ack()
        try:
            self.on_dead(envelope, reason)
        except Exception:
            LOG.exception("marking a dead-lettered message's operation failed")

    # -- running -----------------------------------------------------------

    def start(self) -> None:
        """Consume in a background thread until :meth:`stop`."""
        self._thread = threading.Thread(
            target=self.run,
            kwargs={"safety_interval": 0.02},
            name=f"consumer-{self.queue.name}",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.should_stop = True
        if self._thread is not None:
            self._thread.join(timeout)
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.connection.release()


def _safe_body(message: Message) -> Any:
    try:
        return message.payload
    except Exception:
        return message.body.decode("utf-8", "replace") if isinstance(message.body, bytes) else None

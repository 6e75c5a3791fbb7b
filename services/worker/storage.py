"""Slow storage work: deleting a container with everything in it, and copies
that stream between providers.

Both may run twice (at-least-once delivery) and both are safe to: deleting
what is gone is success, and a copy rewrites the same object. A transient
provider error is retried, then left to redelivery; any other failure ends
the operation as failed, saying why.
"""

from __future__ import annotations

import contextlib
import logging

from sqlalchemy.orm import Session

from drivers.errors import (
    ContainerNotEmpty,
    ContainerNotFound,
    DriverError,
    ObjectNotFound,
)
from drivers.storage.base import StorageDriver
from services.common import storage
from services.common.context import ServiceContext
from services.common.db.models import Container
from services.common.db.session import session_scope
from services.common.errors import NotFound, ProjectQuotaExceeded
from services.common.messaging import Envelope
from services.common.states import add_event, finish_operation
from services.worker.calls import call, settle

LOG = logging.getLogger(__name__)


#: Listing-and-deleting rounds before a container that keeps filling up is given up.
DELETE_ROUNDS = 5


def delete_container(context: ServiceContext, envelope: Envelope) -> None:
    container_id = envelope.payload["container_id"]
    operation_id = envelope.payload["operation_id"]
    with session_scope(context.sessions) as session:
        container = session.get(Container, container_id)
        if container is None or container.deleted_at is not None:
            finish_operation(session, operation_id, "succeeded")
            return
        bucket = container.provider_name
        driver = storage.driver_or_none(context, session, container)

    def remove() -> None:
        if driver is not None:
            _empty_and_delete(context, driver, bucket)

    def record(session: Session) -> None:
        container = session.get(Container, container_id, with_for_update=True)
        if container is not None and container.deleted_at is None:
            storage.finish_delete(session, container)

    settle(context, operation_id, "delete", remove, record)


def _empty_and_delete(context: ServiceContext, driver: StorageDriver, bucket: str) -> None:
    for _ in range(DELETE_ROUNDS):
        marker = None
        while True:
            listing = call(context, driver.list_objects, bucket, marker=marker)
            for stored in listing.objects:
                with contextlib.suppress(ObjectNotFound):
                    call(context, driver.delete_object, bucket, stored.name)
            marker = listing.next_marker
            if marker is None:
                break
        try:
            call(context, driver.delete_container, bucket)
            return
        except ContainerNotFound:
            return
        except ContainerNotEmpty:
            LOG.info("container %s filled up while being emptied; another round", bucket)
    raise ContainerNotEmpty(f"{bucket} kept filling up while being deleted")


def copy_object(context: ServiceContext, envelope: Envelope) -> None:
    payload = envelope.payload
    operation_id = payload["operation_id"]
    key = payload["key"]
    try:
        with session_scope(context.sessions) as session:
            source = storage.live(session, payload["source_container_id"])
            target = storage.live(session, payload["container_id"])
            source_driver = storage.driver_of(context, session, source)
            driver = storage.driver_of(context, session, target)
            source_bucket, bucket, target_id = source.provider_name, target.provider_name, target.id
        original = call(context, source_driver.get_object, source_bucket, payload["source_key"])
        try:
            previous = driver.get_object(bucket, key).size
        except ObjectNotFound:
            previous = 0
        stored = driver.upload_object_via_stream(
            source_driver.download_object_as_stream(source_bucket, payload["source_key"]),
            bucket,
            key,
            size=original.size,
            content_type=original.content_type,
            metadata=original.metadata,
        )
        try:
            with session_scope(context.sessions) as session:
                storage.charge_bytes(session, target_id, stored.size - previous)
        except (NotFound, ProjectQuotaExceeded):
            driver.delete_object(bucket, key)
            raise
    except DriverError as error:
        if error.transient:
            raise
        _fail(context, operation_id, f"copy failed: {error}")
        return
    except (NotFound, ProjectQuotaExceeded) as error:
        _fail(context, operation_id, f"copy failed: {error.message}")
        return
    with session_scope(context.sessions) as session:
        add_event(session, operation_id, f"copied {stored.size} bytes", size=stored.size)
        finish_operation(session, operation_id, "succeeded")


def _fail(context: ServiceContext, operation_id: str, reason: str) -> None:
    with session_scope(context.sessions) as session:
        finish_operation(session, operation_id, "failed", reason)

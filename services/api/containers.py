"""``/v1/containers``: object-storage containers of a project, at its accounts.

Names are the project's (unique among its live containers); another
project's containers answer 404 like names never used. A create charges the
project's ``containers`` quota in the transaction that records it, around
the provider call, so that a failed create leaves neither row nor charge. A
delete of a non-empty container answers 409 unless ``recursive=true``, which
runs in a worker as an operation; from then on the container answers 404
and whatever lands in it meanwhile is deleted with it.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from drivers import DriverType, account_driver
from drivers.errors import ContainerExists, ContainerNotFound
from services.api import schemas
from services.api.app import ApiRequest, Reply
from services.api.paging import paginate
from services.api.views import container_view, operation_view
from services.common import messaging, quotas, storage
from services.common.context import ServiceContext
from services.common.db.models import Account, Container, Operation, new_id
from services.common.db.session import session_scope
from services.common.errors import BrokerUnavailable, Conflict, InvalidInput, NotFound
from services.common.states import start_operation

LOG = logging.getLogger(__name__)


def load(session: Session, request: ApiRequest, name: str, *, lock: bool = False) -> Container:
    """The caller's project's live container called ``name``; 404 otherwise."""
    query = select(Container).where(
        Container.project_id == request.project_id,
        Container.name == name,
        Container.deleted_at.is_(None),
    )
    container = session.scalars(query.with_for_update() if lock else query).first()
    if container is None:
        raise NotFound(f"container {name} not found")
    return container


def create(request: ApiRequest) -> Reply:
    name = request.params["container"]
    if not storage.CONTAINER_NAME.match(name):
        raise InvalidInput(
            "container: names are 3 to 63 of a-z, 0-9, '.', '_' and '-', "
            "starting and ending with a letter or digit",
            field="container",
        )
    body = schemas.validate("ContainerCreate", request.json())
    context = request.context
    with session_scope(context.sessions) as session:
        account = request.visible(
            session.get(Account, body["account_id"]), "account", body["account_id"]
        )
        if account.project_id != request.project_id:
            raise NotFound(f"account {body['account_id']} not found")
        if not account.serves(DriverType.STORAGE):
            raise InvalidInput(
                f"account_id: account {account.name} serves no storage", field="account_id"
            )
        driver = context.drivers.storage_for(account)
        container = Container(
            id=new_id("ctr"),
            project_id=request.project_id,
            name=name,
            account_id=account.id,
            provider=account_driver(account.provider, DriverType.STORAGE),
            provider_name=body.get("provider_name") or name,
            location=body.get("location"),
            state=storage.AVAILABLE,
            charged={},
        )
        session.add(container)
        try:
            session.flush()
        except IntegrityError:
            raise Conflict(f"container {name} already exists") from None
        quotas.charge(session, request.project_id, [container], {"containers": 1})
        try:
            made = driver.create_container(container.provider_name, container.location)
        except ContainerExists:
            if not body.get("existing"):
                raise Conflict(
                    f"{container.provider_name} exists at the provider "
                    '(send "existing": true to adopt it)'
                ) from None
            made = driver.get_container(container.provider_name)
        container.location = made.location or container.location
        view = container_view(container)
    return Reply(
        201, {"container": view}, {"Location": view["links"]["self"]}, resource_id=view["id"]
    )


def index(request: ApiRequest) -> Reply:
    query = select(Container).where(Container.deleted_at.is_(None))
    project_id = request.listing_project()
    if project_id is not None:
        query = query.where(Container.project_id == project_id)
    with session_scope(request.context.sessions) as session:
        return Reply(
            200, paginate(request, session, query, Container, container_view, "containers")
        )


def show(request: ApiRequest) -> Reply:
    with session_scope(request.context.sessions) as session:
        container = load(session, request, request.params["container"])
        return Reply(200, {"container": container_view(container)})


def delete(request: ApiRequest) -> Reply:
    recursive = request.query_bool("recursive")
    context = request.context
    operation: Operation | None = None
    reply: Reply | None = None
    try:
        with context.outbox.transaction() as tx:
            container = load(tx.session, request, request.params["container"], lock=True)
            if container.state == storage.DELETING:
                operation = tx.session.get(Operation, container.operation_id)
            elif not recursive:
                _delete_empty(context, tx.session, container)
                return Reply(204, resource_id=container.id)
            else:
                operation = start_operation(
                    tx.session,
                    container.project_id,
                    container.id,
                    "delete_container",
                    request.request_id,
                )
                container.state = storage.DELETING
                container.operation_id = operation.id
                tx.send(
                    messaging.message(
                        "delete_container",
                        request.request_id,
                        container_id=container.id,
                        operation_id=operation.id,
                    )
                )
            reply = _deleting(container, operation)
    except BrokerUnavailable:
        if reply is None:
            raise
        # The delete always wins: it stays recorded, its message in the outbox.
        LOG.warning("broker unavailable; a container delete waits in the outbox")
    assert reply is not None
    return reply


def _deleting(container: Container, operation: Operation | None) -> Reply:
    body = {"container": container_view(container)}
    headers = {}
    if operation is not None:
        body["operation"] = operation_view(operation)
        headers["Location"] = f"/v1/operations/{operation.id}"
    return Reply(202, body, headers, resource_id=container.id)


def _delete_empty(context: ServiceContext, session: Session, container: Container) -> None:
    """Delete an empty container at the provider (409 if it is not), then here."""
    driver = storage.driver_or_none(context, session, container)
    if driver is not None:
        try:
            driver.delete_container(container.provider_name)
        except ContainerNotFound:
            LOG.info("container %s was already gone at the provider", container.id)
    storage.finish_delete(session, container)

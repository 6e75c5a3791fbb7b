"""``/v1/accounts``: provider accounts. Credentials are write-only."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from drivers import DriverType, account_driver
from services.api import schemas
from services.api.app import ApiRequest, Reply
from services.api.views import account_view
from services.common import messaging
from services.common.db.models import Account, Project, new_id, utcnow
from services.common.db.session import session_scope
from services.common.errors import Conflict, InvalidInput, NotFound


def _load(session: Session, request: ApiRequest, account_id: str) -> Account:
    return request.visible(session.get(Account, account_id), "account", account_id)  # type: ignore[no-any-return]


def offered(provider: str) -> list[str]:
    """The kinds an account of ``provider`` can serve."""
    return [kind.value for kind in DriverType if account_driver(provider, kind) is not None]


def create(request: ApiRequest) -> Reply:
    body = schemas.validate("AccountCreate", request.json())
    kinds = offered(body["provider"])
    if not kinds:
        raise InvalidInput(f"provider: unknown provider {body['provider']!r}", field="provider")
    services = body.get("services")
    for kind in services or ():
        if kind not in kinds:
            raise InvalidInput(
                f"services: {body['provider']} offers {', '.join(kinds)}, not {kind}",
                field="services",
            )
    project_id = body.get("project_id") or request.project_id
    context = request.context
    try:
        with context.outbox.transaction() as tx:
            if tx.session.get(Project, project_id) is None or not request.user.sees(project_id):
                raise NotFound(f"project {project_id} not found")
            account = Account(
                id=new_id("acct"),
                project_id=project_id,
                name=body["name"],
                provider=body["provider"],
                credentials=context.cipher.encrypt(body.get("credentials") or {}),
                options=body.get("options") or {},
                services=services,
            )
            tx.session.add(account)
            tx.session.flush()
            if account.serves(DriverType.COMPUTE):
                tx.send(
                    messaging.message("sync_catalog", request.request_id, account_id=account.id)
                )
    except IntegrityError:
        raise Conflict(f"an account named {body['name']} already exists") from None
    return Reply(
        201,
        {"account": account_view(account)},
        {"Location": f"/v1/accounts/{account.id}"},
        resource_id=account.id,
    )


def index(request: ApiRequest) -> Reply:
    query = select(Account).where(Account.deleted_at.is_(None)).order_by(Account.created_at)
    project_id = request.listing_project()
    if project_id is not None:
        query = query.where(Account.project_id == project_id)
    with session_scope(request.context.sessions) as session:
        return Reply(200, {"accounts": [account_view(a) for a in session.scalars(query)]})


def show(request: ApiRequest) -> Reply:
    with session_scope(request.context.sessions) as session:
        account = _load(session, request, request.params["account_id"])
        return Reply(200, {"account": account_view(account)})


def delete(request: ApiRequest) -> Reply:
    with session_scope(request.context.sessions) as session:
        account = _load(session, request, request.params["account_id"])
        account.deleted_at = utcnow()
        account.name = f"{account.name}~deleted~{account.id}"[:255]
    return Reply(204)


def sync(request: ApiRequest) -> Reply:
    context = request.context
    with context.outbox.transaction() as tx:
        account = _load(tx.session, request, request.params["account_id"])
        tx.send(messaging.message("sync_catalog", request.request_id, account_id=account.id))
    return Reply(202, {"account": account_view(account)})

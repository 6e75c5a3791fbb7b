"""The WSGI application: routing, request ids, auth, and the one error mapping.

Controllers are plain functions ``(request: ApiRequest) -> Reply``. Every
:class:`ServiceError` becomes ``{"error": {"code", "message", "request_id"}}``
with its status here; anything else is logged and answered with a bare 500.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import routes
from sqlalchemy import select
from webob import Request, Response

from services.common.context import ServiceContext
from services.common.db.models import ApiKey
from services.common.db.session import session_scope
from services.common.errors import (
    Forbidden,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    Unauthorized,
    UnsupportedMediaType,
)
from services.common.keys import hash_key

LOG = logging.getLogger(__name__)

KEY_CACHE_SECONDS = 10.0
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class Principal:
    key_id: str
    project_id: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ApiRequest:
    raw: Request
    context: ServiceContext
    request_id: str
    params: dict[str, str]
    principal: Principal | None = None
    _json: Any = None

    @property
    def user(self) -> Principal:
        """Who is calling; only public routes have none."""
        if self.principal is None:
            raise Unauthorized()
        return self.principal

    @property
    def project_id(self) -> str:
        return self.user.project_id

    def require_admin(self) -> None:
        if not self.user.is_admin:
            raise Forbidden("this needs an admin key")

    def json(self) -> Any:
        """The request body as JSON; 400/413/415 when it cannot be."""
        if self._json is None:
            limit = self.context.config.api.max_body_bytes
            if (self.raw.content_length or 0) > limit:
                raise PayloadTooLarge(f"request body exceeds {limit} bytes")
            content_type = (self.raw.content_type or "").lower()
            if content_type not in ("application/json", ""):
                raise UnsupportedMediaType()
            body = self.raw.body_file.read(limit + 1)
            if len(body) > limit:
                raise PayloadTooLarge(f"request body exceeds {limit} bytes")
            if not body.strip():
                raise InvalidInput("body: a JSON object is required")
            try:
                self._json = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise InvalidInput("body: not valid JSON") from None
        return self._json

    def query_int(
        self, name: str, default: int, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        text = self.raw.GET.get(name)
        if text is None or text == "":
            return default
        try:
            value = int(text)
        except ValueError:
            raise InvalidInput(f"{name}: must be an integer", field=name) from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise InvalidInput(f"{name}: must be {bounds}", field=name)
        return value

    def query_float(self, name: str) -> float | None:
        text = self.raw.GET.get(name)
        if text is None or text == "":
            return None
        try:
            value = float(text)
        except ValueError:
            raise InvalidInput(f"{name}: must be a number", field=name) from None
        if not value >= 0 or value == float("inf"):
            raise InvalidInput(f"{name}: must be a non-negative number", field=name)
        return value

    def query_list(self, name: str) -> list[str]:
        values: list[str] = []
        for item in self.raw.GET.getall(name):
            values.extend(part.strip() for part in item.split(",") if part.strip())
        return values


Controller = Callable[[ApiRequest], Reply]


@dataclass(frozen=True)
class Route:
    name: str
    path: str
    method: str
    controller: Controller
    summary: str = ""
    body: str | None = None  # name of the JSON Schema in services.api.schemas.BODIES
    query: tuple[str, ...] = ()
    status: int = 200
    other_statuses: tuple[int, ...] = ()  # documented successes besides ``status``
    public: bool = False


class Application:
    """The API as a WSGI callable."""

    def __init__(self, context: ServiceContext, routes_: Iterable[Route]) -> None:
        self.context = context
        self.mapper = routes.Mapper()
        self.routes: dict[str, Route] = {}
        self.paths: dict[str, set[str]] = {}
        for route in routes_:
            self.routes[route.name] = route
            self.mapper.connect(route.name, route.path, conditions={"method": [route.method]})
            self.paths.setdefault(route.path, set()).add(route.method)
        self._principals: dict[str, tuple[float, Principal]] = {}
        self._cache_lock = threading.Lock()
        self.path_mapper = routes.Mapper()
        for path in self.paths:
            self.path_mapper.connect(path, path)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        raw = Request(environ)
        incoming = raw.headers.get("X-Request-Id", "")
        request_id = incoming if REQUEST_ID.match(incoming) else f"req-{uuid.uuid4().hex}"
        try:
            response = self._handle(raw, request_id)
        except ServiceError as error:
            response = error_response(error, request_id)
        except Exception:
            LOG.exception("request %s %s failed [%s]", raw.method, raw.path, request_id)
            response = error_response(ServiceError(), request_id)
        response.headers["X-Request-Id"] = request_id
        return response(environ, start_response)

    def _handle(self, raw: Request, request_id: str) -> Response:
        found = self.mapper.routematch(environ=raw.environ)
        if found is None:
            if self.path_mapper.match(raw.path_info) is not None:
                raise MethodNotAllowed(f"{raw.method} is not allowed on {raw.path_info}")
            raise NotFound(f"no such resource: {raw.path_info}")
        match, mapped = found
        route = self.routes[mapped.name]
        params = {k: str(v) for k, v in match.items() if k not in ("controller", "action")}
        request = ApiRequest(raw=raw, context=self.context, request_id=request_id, params=params)
        if not route.public:
            request.principal = self.authenticate(raw)
        reply = route.controller(request)
        response = Response(status=reply.status, charset="utf-8")
        if reply.body is not None:
            response.content_type = "application/json"
            response.text = json.dumps(reply.body, default=str)
        response.headers.update(reply.headers)
        return response

    def authenticate(self, raw: Request) -> Principal:
        """The key's principal; lookups are cached for KEY_CACHE_SECONDS, so a
        revoked key stops working within that time."""
        header = raw.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized()
        digest = hash_key(key.strip())
        now = time.monotonic()
        with self._cache_lock:
            cached = self._principals.get(digest)
        if cached is not None and now - cached[0] < KEY_CACHE_SECONDS:
            return cached[1]
        principal = self._lookup(digest)
        with self._cache_lock:
            if len(self._principals) > 10_000:
                self._principals.clear()
            self._principals[digest] = (now, principal)
        return principal

    def _lookup(self, digest: str) -> Principal:
        with session_scope(self.context.sessions) as session:
            row = session.scalars(
                select(ApiKey).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
            ).first()
            if row is None:
                raise Unauthorized("the API key is not valid")
            return Principal(key_id=row.id, project_id=row.project_id, role=row.role)


def error_response(error: ServiceError, request_id: str) -> Response:
    body = {"error": {"code": error.code, "message": error.message, "request_id": request_id}}
    if error.details.get("field"):
        body["error"]["field"] = error.details["field"]
    response = Response(status=error.status, content_type="application/json", charset="utf-8")
    response.text = json.dumps(body)
    if error.status == 503:
        response.headers["Retry-After"] = "5"
    return response

"""The WSGI application: routing, request ids, auth, roles, audit, and the one
error mapping.

Controllers are plain functions ``(request: ApiRequest) -> Reply``. Every
route names the least role that may call it, checked here before the
controller runs; what a caller may *see* (its project, or everything for an
operator) is checked by :meth:`ApiRequest.visible`, so another project's
resources answer 404. Every :class:`ServiceError` becomes ``{"error":
{"code", "message", "request_id"}}`` with its status here; anything else is
logged and answered with a bare 500. Every mutating call is audited here.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import routes
from webob import Request, Response

from drivers.errors import DriverError
from services.api import audit
from services.api.auth import KeyCache, Principal
from services.api.provider_errors import from_driver
from services.common import metrics
from services.common.context import ServiceContext
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
from services.common.keys import ROLES

LOG = logging.getLogger(__name__)

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: The resource a create made (audited); other routes name theirs in the path.
    resource_id: str | None = None
    #: A streamed body (bytes chunks) instead of JSON ``body``; set its
    #: Content-Type and Content-Length in ``headers``.
    stream: Iterable[bytes] | None = None


@dataclass
class ApiRequest:
    raw: Request
    context: ServiceContext
    request_id: str
    params: dict[str, str]
    principal: Principal | None = None
    key_cache: KeyCache | None = None
    #: What the audit record of this call will say (None outside the application).
    call: audit.Call | None = None
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

    def visible(self, resource: Any, what: str, resource_id: str) -> Any:
        """``resource`` if it exists for the caller; else 404, the same answer as
        for an id never used (another project's things do not exist)."""
        if (
            resource is None
            or getattr(resource, "deleted_at", None) is not None
            or not self.user.sees(resource.project_id)
        ):
            raise NotFound(f"{what} {resource_id} not found")
        return resource

    def listing_project(self) -> str | None:
        """The project a list shows: the caller's, or for an operator the one
        named by ``project_id``, or every one (None) with ``all_projects=true``."""
        everything = self.raw.GET.get("all_projects", "").lower() in ("1", "true", "yes")
        named = self.raw.GET.get("project_id")
        if (everything or named) and not self.user.is_operator:
            raise Forbidden("all_projects and project_id need an operator key")
        if everything:
            return None
        return named or self.project_id

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

    def query_bool(self, name: str) -> bool:
        text = self.raw.GET.get(name, "").lower()
        if text not in ("", *TRUE, *FALSE):
            raise InvalidInput(f"{name}: must be true or false", field=name)
        return text in TRUE

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
    role: str = "member"  # the least role that may call it
    #: Regular expressions for path parameters (``(("key", ".+"),)`` lets it hold "/").
    requirements: tuple[tuple[str, str], ...] = ()
    #: Media type of a body that is not JSON (object data), and of such an answer.
    body_media: str | None = None
    reply_media: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"route {self.name}: unknown role {self.role}")


#: How query parameters say yes and no.
TRUE = ("1", "true", "yes")
FALSE = ("0", "false", "no")


class Application:
    """The API as a WSGI callable."""

    def __init__(self, context: ServiceContext, routes_: Iterable[Route]) -> None:
        self.context = context
        self.mapper = routes.Mapper()
        self.routes: dict[str, Route] = {}
        self.paths: dict[str, set[str]] = {}
        for route in routes_:
            self.routes[route.name] = route
            self.mapper.connect(
                route.name,
                route.path,
                conditions={"method": [route.method]},
                requirements=dict(route.requirements),
            )
            self.paths.setdefault(route.path, set()).add(route.method)
        self.keys = KeyCache(context.sessions, context.config.api.key_cache_seconds)
        self.path_mapper = routes.Mapper()
        for path in self.paths:
            requirements = {
                name: pattern
                for route in self.routes.values()
                if route.path == path
                for name, pattern in route.requirements
            }
            self.path_mapper.connect(path, path, requirements=requirements)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        raw = Request(environ)
        incoming = raw.headers.get("X-Request-Id", "")
        request_id = incoming if REQUEST_ID.match(incoming) else f"req-{uuid.uuid4().hex}"
        call = audit.Call(request_id=request_id, method=raw.method, path=raw.path)
        started = time.perf_counter()
        try:
            response = self._handle(raw, call)
        except (ServiceError, DriverError) as error:
            mapped = error if isinstance(error, ServiceError) else from_driver(error)
            response = error_response(mapped, request_id)
            call.error_code = mapped.code
        except Exception:
            LOG.exception("request %s %s failed [%s]", raw.method, raw.path, request_id)
            response = error_response(ServiceError(), request_id)
            call.error_code = ServiceError.code
        response.headers["X-Request-Id"] = request_id
        metrics.observe_request(
            call.route or "unmatched",
            raw.method,
            response.status_int,
            time.perf_counter() - started,
        )
        if call.route is not None and raw.method in MUTATING:
            audit.record(self.context.sessions, call, response.status_int)
        return response(environ, start_response)

    def _handle(self, raw: Request, call: audit.Call) -> Response:
        found = self.mapper.routematch(environ=raw.environ)
        if found is None:
            if self.path_mapper.match(raw.path_info) is not None:
                raise MethodNotAllowed(f"{raw.method} is not allowed on {raw.path_info}")
            raise NotFound(f"no such resource: {raw.path_info}")
        match, mapped = found
        route = self.routes[mapped.name]
        params = {
            name: path_text(str(value))
            for name, value in match.items()
            if name not in ("controller", "action")
        }
        call.route = route.name
        call.resource_id = next((v for k, v in params.items() if k.endswith("_id")), None)
        request = ApiRequest(
            raw=raw,
            context=self.context,
            request_id=call.request_id,
            params=params,
            key_cache=self.keys,
            call=call,
        )
        if not route.public:
            request.principal = call.principal = self.keys.authenticate(
                raw.headers.get("Authorization", "")
            )
            if not request.principal.has_role(route.role):
                raise Forbidden(f"this needs a key with role {route.role} or above")
        reply = route.controller(request)
        call.resource_id = call.resource_id or reply.resource_id
        if reply.stream is not None:
            response = Response(status=reply.status, app_iter=reply.stream)
            response.headers.update(reply.headers)
            return response
        response = Response(status=reply.status, charset="utf-8")
        if reply.body is not None:
            response.content_type = "application/json"
            response.text = json.dumps(reply.body, default=str)
        response.headers.update(reply.headers)
        return response


def path_text(value: str) -> str:
    """A path parameter as text: WSGI gives the path's UTF-8 bytes as latin-1."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def error_response(error: ServiceError, request_id: str) -> Response:
    body = {"error": {"code": error.code, "message": error.message, "request_id": request_id}}
    if error.details.get("field"):
        body["error"]["field"] = error.details["field"]
    response = Response(status=error.status, content_type="application/json", charset="utf-8")
    response.text = json.dumps(body)
    if error.status == 503:
        response.headers["Retry-After"] = "5"
    return response

"""The route table, the OpenAPI document made from it, and the app factory."""

from __future__ import annotations

from typing import Any

from services.api import (
    accounts,
    admin,
    api_keys,
    audit_log,
    balancers,
    catalog,
    containers,
    node_exec,
    nodes,
    objects,
    operations,
    quota,
    schemas,
)
from services.api.app import ApiRequest, Application, Reply, Route
from services.common.context import ServiceContext

PAGE = ("limit", "marker")
KEY = (("key", ".+"),)  # object keys may hold "/"
OCTETS = "application/octet-stream"


def openapi(request: ApiRequest) -> Reply:
    return Reply(200, openapi_document())


ROUTES: list[Route] = [
    Route("healthz", "/healthz", "GET", admin.healthz, "Health check", public=True),
    Route("openapi", "/v1/openapi.json", "GET", openapi, "This document", public=True),
    Route(
        "node_create",
        "/v1/nodes",
        "POST",
        nodes.create,
        "Create a node (202), or plan one with dry_run (200)",
        "NodeCreate",
        status=202,
        other_statuses=(200,),
    ),
    Route(
        "node_index",
        "/v1/nodes",
        "GET",
        nodes.index,
        "List nodes",
        query=(*PAGE, *nodes.LIST_FILTERS, "all_projects", "project_id"),
    ),
    Route("node_show", "/v1/nodes/{node_id}", "GET", nodes.show, "Show a node"),
    Route(
        "node_delete", "/v1/nodes/{node_id}", "DELETE", nodes.delete, "Delete a node", status=202
    ),
    Route(
        "node_action",
        "/v1/nodes/{node_id}/action",
        "POST",
        nodes.action,
        "Reboot, start or stop a node",
        "NodeAction",
        status=202,
    ),
    Route(
        "node_deploy",
        "/v1/nodes/{node_id}/deploy",
        "POST",
        nodes.deploy,
        "Run a deployment on a running node: files (inline or from a container), scripts",
        "NodeDeploy",
        status=202,
    ),
    Route(
        "node_exec",
        "/v1/nodes/{node_id}/exec",
        "POST",
        node_exec.exec_,
        "Run a command on a running node; its output streams back (NDJSON)",
        "NodeExec",
        reply_media="application/x-ndjson",
    ),
    Route(
        "operation_index",
        "/v1/operations",
        "GET",
        operations.index,
        "List operations",
        query=(*PAGE, "node_id", "status", "action", "all_projects", "project_id"),
    ),
    Route(
        "operation_show",
        "/v1/operations/{operation_id}",
        "GET",
        operations.show,
        "Show an operation and its events",
    ),
    Route(
        "account_create",
        "/v1/accounts",
        "POST",
        accounts.create,
        "Register a provider account (admin)",
        "AccountCreate",
        status=201,
        role="admin",
    ),
    Route(
        "account_index",
        "/v1/accounts",
        "GET",
        accounts.index,
        "List accounts (admin)",
        query=("all_projects", "project_id"),
        role="admin",
    ),
    Route(
        "account_show",
        "/v1/accounts/{account_id}",
        "GET",
        accounts.show,
        "Show an account (admin)",
        role="admin",
    ),
    Route(
        "account_delete",
        "/v1/accounts/{account_id}",
        "DELETE",
        accounts.delete,
        "Delete an account (admin)",
        status=204,
        role="admin",
    ),
    Route(
        "account_sync",
        "/v1/accounts/{account_id}/sync",
        "POST",
        accounts.sync,
        "Sync an account's catalog now (admin)",
        status=202,
        role="admin",
    ),
    Route(
        "locations",
        "/v1/locations",
        "GET",
        catalog.locations,
        "List locations",
        query=("account_id", "country", "limit"),
    ),
    Route(
        "sizes",
        "/v1/sizes",
        "GET",
        catalog.sizes,
        "List sizes per location",
        query=("account_id", "location_id", "min_ram_mb", "min_vcpus", "limit"),
    ),
    Route(
        "images",
        "/v1/images",
        "GET",
        catalog.images,
        "List images",
        query=("account_id", "location_id", "name", "limit"),
    ),
    Route(
        "offers",
        "/v1/offers",
        "GET",
        catalog.offers,
        "Offers matching requirements",
        query=catalog.OFFER_PARAMETERS,
    ),
    Route(
        "quota_show",
        "/v1/quota",
        "GET",
        quota.show,
        "The project's quota limits and usage",
        query=("project_id",),
    ),
    Route(
        "quota_update",
        "/v1/quota",
        "PATCH",
        quota.update,
        "Set a project's quota limits (operator)",
        "QuotaUpdate",
        role="operator",
    ),
    Route(
        "key_index",
        "/v1/keys",
        "GET",
        api_keys.index,
        "List API keys (admin; never the keys themselves)",
        query=(*PAGE, "all_projects", "project_id"),
        role="admin",
    ),
    Route(
        "key_create",
        "/v1/keys",
        "POST",
        api_keys.create,
        "Create an API key, shown once (admin)",
        "KeyCreate",
        status=201,
        role="admin",
    ),
    Route(
        "key_show", "/v1/keys/{key_id}", "GET", api_keys.show, "Show a key (admin)", role="admin"
    ),
    Route(
        "key_delete",
        "/v1/keys/{key_id}",
        "DELETE",
        api_keys.delete,
        "Revoke a key (admin)",
        status=204,
        role="admin",
    ),
    Route(
        "audit_index",
        "/v1/audit",
        "GET",
        audit_log.index,
        "The audit log of mutating calls (admin)",
        query=(*PAGE, *audit_log.FILTERS, "all_projects", "project_id"),
        role="admin",
    ),
    Route(
        "container_index",
        "/v1/containers",
        "GET",
        containers.index,
        "List containers",
        query=(*PAGE, "all_projects", "project_id"),
    ),
    Route(
        "container_create",
        "/v1/containers/{container}",
        "PUT",
        containers.create,
        "Create a container at an account",
        "ContainerCreate",
        status=201,
    ),
    Route(
        "container_show", "/v1/containers/{container}", "GET", containers.show, "Show a container"
    ),
    Route(
        "container_delete",
        "/v1/containers/{container}",
        "DELETE",
        containers.delete,
        "Delete a container: 409 if it holds objects, unless recursive=true (202, operation)",
        query=("recursive",),
        status=204,
        other_statuses=(202,),
    ),
    Route(
        "object_index",
        "/v1/containers/{container}/objects",
        "GET",
        objects.index,
        "List objects (prefix, delimiter, marker, limit)",
        query=("prefix", "delimiter", "marker", "limit"),
    ),
    Route(
        "object_url",
        "/v1/containers/{container}/objects/{key}/url",
        "POST",
        objects.url,
        "A time-limited direct URL to GET or PUT the object, where the provider has one",
        "ObjectUrl",
        requirements=KEY,
    ),
    Route(
        "object_put",
        "/v1/containers/{container}/objects/{key}",
        "PUT",
        objects.put,
        "Upload an object (streamed; Content-MD5 checked), or copy one (X-Copy-From)",
        status=201,
        other_statuses=(202,),
        requirements=KEY,
        body_media=OCTETS,
    ),
    Route(
        "object_get",
        "/v1/containers/{container}/objects/{key}",
        "GET",
        objects.get,
        "Download an object (streamed; Range, If-None-Match)",
        other_statuses=(206, 304),
        requirements=KEY,
        reply_media=OCTETS,
    ),
    Route(
        "object_head",
        "/v1/containers/{container}/objects/{key}",
        "HEAD",
        objects.get,
        "An object's size, type, ETag and metadata",
        other_statuses=(206, 304),
        requirements=KEY,
        reply_media=OCTETS,
    ),
    Route(
        "object_delete",
        "/v1/containers/{container}/objects/{key}",
        "DELETE",
        objects.delete,
        "Delete an object",
        status=204,
        requirements=KEY,
    ),
    Route(
        "balancer_create",
        "/v1/balancers",
        "POST",
        balancers.create,
        "Create a load balancer (202 + operation)",
        "BalancerCreate",
        status=202,
    ),
    Route(
        "balancer_index",
        "/v1/balancers",
        "GET",
        balancers.index,
        "List load balancers",
        query=(*PAGE, *balancers.LIST_FILTERS, "all_projects", "project_id"),
    ),
    Route(
        "balancer_show",
        "/v1/balancers/{balancer_id}",
        "GET",
        balancers.show,
        "Show a balancer with its members and their health",
    ),
    Route(
        "balancer_delete",
        "/v1/balancers/{balancer_id}",
        "DELETE",
        balancers.delete,
        "Delete a balancer (202 + operation; it always wins)",
        status=202,
    ),
    Route(
        "member_create",
        "/v1/balancers/{balancer_id}/members",
        "POST",
        balancers.member_create,
        "Attach a node (node_id) or an address (202 + operation)",
        "MemberCreate",
        status=202,
    ),
    Route(
        "member_index",
        "/v1/balancers/{balancer_id}/members",
        "GET",
        balancers.member_index,
        "A balancer's members and their health",
    ),
    Route(
        "member_delete",
        "/v1/balancers/{balancer_id}/members/{member_id}",
        "DELETE",
        balancers.member_delete,
        "Detach a member (202 + operation)",
        status=202,
    ),
    Route(
        "services",
        "/v1/services",
        "GET",
        admin.services,
        "Services and heartbeats (operator)",
        role="operator",
    ),
    Route(
        "metrics",
        "/metrics",
        "GET",
        admin.metrics_page,
        "Prometheus metrics (operator; or [metrics] bind without a key)",
        role="operator",
        reply_media="text/plain",
    ),
]

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "request_id"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "request_id": {"type": "string"},
                "field": {"type": "string"},
            },
        }
    },
}


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in ROUTES:
        operation: dict[str, Any] = {"operationId": route.name, "summary": route.summary}
        parameters = [
            {
                "name": name.strip("{}"),
                "in": "path",
                "required": True,
                "schema": {"type": "string", "maxLength": 1024 if name == "{key}" else 64},
            }
            for name in route.path.split("/")
            if name.startswith("{")
        ]
        parameters += [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
            for name in route.query
        ]
        if parameters:
            operation["parameters"] = parameters
        if route.body_media:
            operation["requestBody"] = {
                "required": False,
                "content": {route.body_media: {"schema": {"type": "string", "format": "binary"}}},
            }
        elif route.body:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{route.body}"}}
                },
            }
        success: dict[str, Any] = {"description": "success"}
        if route.reply_media:
            success["content"] = {route.reply_media: {"schema": {"type": "string"}}}
        elif route.status != 204:
            success["content"] = {"application/json": {"schema": {"type": "object"}}}
        errors = {
            "description": "error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        operation["responses"] = {
            **{str(status): success for status in (route.status, *route.other_statuses)},
            "4XX": errors,
            "5XX": errors,
        }
        if not route.public:
            operation["security"] = [{"bearer": []}]
            operation["x-overcast-role"] = route.role
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Overcast API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": {**schemas.BODIES, "Error": ERROR_SCHEMA},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def make_app(context: ServiceContext) -> Application:
    return Application(context, ROUTES)

"""JSON Schemas of request bodies: they validate requests and make the OpenAPI document."""

from __future__ import annotations

from typing import Any

import jsonschema

from services.common.errors import InvalidInput

STRINGS = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": 255},
    "maxItems": 100,
    "uniqueItems": True,
}
COUNTRY = {"type": "string", "pattern": "^[A-Za-z]{2}$", "description": "ISO 3166-1 alpha-2"}
NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
}

PATH = {"type": "string", "minLength": 1, "maxLength": 4096, "pattern": "^/"}
MODE = {"type": "string", "pattern": "^[0-7]{3,4}$"}

#: What to do on a node over SSH: files (inline or from a container of the
#: project, streamed), then scripts with their environment and directory.
DEPLOY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "script": {"type": "string", "minLength": 1, "maxLength": 262144},
        "ssh_username": {"type": "string", "minLength": 1, "maxLength": 64},
        "files": {
            "type": "array",
            "maxItems": 20,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["path", "content"],
                "properties": {
                    "path": PATH,
                    "content": {"type": "string", "maxLength": 262144},
                    "mode": MODE,
                },
            },
        },
        "steps": {
            "type": "array",
            "maxItems": 50,
            "description": "Run in order after files and script; the first failure stops them",
            "items": {
                "oneOf": [
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["file"],
                        "properties": {
                            "file": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["from", "target"],
                                "properties": {
                                    "from": {
                                        "type": "string",
                                        "pattern": "^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]/.+",
                                        "maxLength": 1100,
                                        "description": "container/key of the project's",
                                    },
                                    "target": PATH,
                                    "mode": MODE,
                                },
                            }
                        },
                    },
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["script"],
                        "properties": {
                            "script": {"type": "string", "minLength": 1, "maxLength": 262144},
                            "env": {
                                "type": "object",
                                "maxProperties": 100,
                                "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]{0,127}$"},
                                "additionalProperties": {"type": "string", "maxLength": 32768},
                            },
                            "cwd": PATH,
                        },
                    },
                ]
            },
        },
    },
}

NODE_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "image"],
    "properties": {
        "name": NAME,
        "image": {
            "type": "string",
            "minLength": 1,
            "maxLength": 255,
            "description": "Image id, or the start of an image id or name (e.g. ubuntu)",
        },
        "min_ram_mb": {"type": "integer", "minimum": 0, "maximum": 16777216},
        "min_vcpus": {"type": "integer", "minimum": 0, "maximum": 4096},
        "min_disk_gb": {"type": "integer", "minimum": 0, "maximum": 1048576},
        "min_gpus": {"type": "integer", "minimum": 0, "maximum": 64},
        "countries": {"type": "array", "items": COUNTRY, "maxItems": 250, "uniqueItems": True},
        "exclude_countries": {
            "type": "array",
            "items": COUNTRY,
            "maxItems": 250,
            "uniqueItems": True,
        },
        "providers": {
            "type": "array",
            "items": {"type": "string", "maxLength": 64},
            "maxItems": 50,
        },
        "accounts": {
            "type": "array",
            "items": {"type": "string", "maxLength": 255},
            "maxItems": 100,
        },
        "max_ram_mb": {"type": "integer", "minimum": 0, "maximum": 16777216},
        "max_vcpus": {"type": "integer", "minimum": 0, "maximum": 4096},
        "max_gpus": {"type": "integer", "minimum": 0, "maximum": 64},
        "regions": STRINGS,
        "exclude_regions": STRINGS,
        "zones": STRINGS,
        "exclude_zones": STRINGS,
        "exclude_providers": STRINGS,
        "exclude_accounts": STRINGS,
        "max_price": {"type": "number", "exclusiveMinimum": 0, "maximum": 100000},
        "skip_stale_prices": {
            "type": "boolean",
            "description": "Leave out offers whose price is older than [pricing] stale_after",
        },
        "policy": {"type": "string", "enum": ["cheapest", "round_robin", "zone_aware"]},
        "group": NAME,
        "anti_affinity": {
            "type": "string",
            "enum": ["soft", "strict"],
            "description": "With zone_aware and a group: strict = one per zone",
        },
        "count": {"type": "integer", "minimum": 1, "maximum": 100},
        "dry_run": {
            "type": "boolean",
            "description": "Return the placement(s) and price; create nothing",
        },
        "ssh_public_key": {
            "type": "string",
            "maxLength": 16384,
            "pattern": r"^(ssh|ecdsa)-[A-Za-z0-9-]+ [A-Za-z0-9+/=]+( [^\n]*)?\n?$",
        },
        "deploy": DEPLOY,
    },
}

NODE_EXEC: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["command"],
    "properties": {
        "command": {"type": "string", "minLength": 1, "maxLength": 65536},
        "timeout": {"type": "number", "minimum": 1, "maximum": 3600, "description": "Seconds"},
        "user": {"type": "string", "minLength": 1, "maxLength": 64},
    },
}

NODE_ACTION: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["action"],
    "properties": {"action": {"type": "string", "enum": ["reboot", "start", "stop"]}},
}

ACCOUNT_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "provider"],
    "properties": {
        "name": NAME,
        "provider": {"type": "string", "minLength": 1, "maxLength": 64},
        "credentials": {
            "type": "object",
            "maxProperties": 20,
            "additionalProperties": {"type": "string", "maxLength": 8192},
            "description": "Write-only; stored encrypted, never returned",
        },
        "options": {
            "type": "object",
            "maxProperties": 50,
            "description": "Driver options (endpoint, region, ...); a `compute` or "
            "`storage` object holds options for that kind of driver only",
        },
        "services": {
            "type": "array",
            "items": {"enum": ["compute", "storage", "loadbalancer"]},
            "minItems": 1,
            "uniqueItems": True,
            "description": "The kinds it serves; default: every kind its provider offers",
        },
        "project_id": {"type": "string", "maxLength": 40, "description": "Admin only"},
    },
}

CONTAINER_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["account_id"],
    "properties": {
        "account_id": {"type": "string", "minLength": 1, "maxLength": 40},
        "location": {
            "type": ["string", "null"],
            "maxLength": 128,
            "description": "Region or location at the provider; default: the account's",
        },
        "provider_name": {
            "type": "string",
            "minLength": 3,
            "maxLength": 63,
            "description": "The container's name at the provider; default: its name",
        },
        "existing": {
            "type": "boolean",
            "description": "Adopt a container that already exists at the provider",
        },
    },
}

PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
WEIGHT = {"type": "integer", "minimum": 0, "maximum": 256}

MEMBER_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "One of the project's nodes (node_id and the port it serves on), or an address",
    "properties": {
        "node_id": {"type": "string", "minLength": 1, "maxLength": 40},
        "ip": {"type": "string", "minLength": 1, "maxLength": 64, "format": "ipv4"},
        "port": PORT,
        "weight": WEIGHT,
    },
    "oneOf": [{"required": ["node_id"]}, {"required": ["ip", "port"]}],
}

BALANCER_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "port"],
    "properties": {
        "name": NAME,
        "port": PORT,
        "protocol": {"enum": ["http", "https", "tcp"]},
        "algorithm": {
            "enum": [
                "round_robin",
                "random",
                "least_connections",
                "weighted_round_robin",
                "weighted_least_connections",
            ]
        },
        "health_check": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "interval": {"type": "number", "minimum": 0.1, "maximum": 300},
                "timeout": {"type": "number", "minimum": 0.1, "maximum": 120},
                "healthy_threshold": {"type": "integer", "minimum": 1, "maximum": 10},
                "unhealthy_threshold": {"type": "integer", "minimum": 1, "maximum": 10},
                "path": {"type": ["string", "null"], "pattern": "^/[!-~]*$", "maxLength": 1024},
            },
        },
        "account_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 40,
            "description": "Pin it to this account; default: placed by the requirements",
        },
        "providers": {**STRINGS, "description": "Placed at an account of one of these"},
        "accounts": {**STRINGS, "description": "Placed at one of these accounts (names)"},
        "countries": {"type": "array", "items": COUNTRY, "maxItems": 250, "uniqueItems": True},
        "members": {"type": "array", "items": MEMBER_CREATE, "maxItems": 100},
    },
}

OBJECT_URL: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "method": {"enum": ["GET", "PUT"]},
        "expires": {"type": "integer", "minimum": 1, "maximum": 604800},
    },
}

KEY_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": NAME,
        "role": {
            "type": "string",
            "enum": ["member", "admin"],
            "description": "Operator keys are made only with overcast-manage",
        },
        "expires_in": {
            "type": "integer",
            "minimum": 60,
            "maximum": 315360000,
            "description": "Seconds until the key stops working (default: never)",
        },
        "project_id": {"type": "string", "maxLength": 40, "description": "Operators only"},
    },
}

LIMIT = {"description": "null: no limit"}
QUOTA_UPDATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "project_id": {"type": "string", "maxLength": 40, "description": "Default: your own"},
        "nodes": {**LIMIT, "type": ["integer", "null"], "minimum": 0, "maximum": 10**9},
        "vcpus": {**LIMIT, "type": ["integer", "null"], "minimum": 0, "maximum": 10**9},
        "ram_mb": {**LIMIT, "type": ["integer", "null"], "minimum": 0, "maximum": 10**12},
        "price_per_hour": {
            **LIMIT,
            "type": ["number", "null"],
            "minimum": 0,
            "maximum": 10**6,
            "description": "USD per hour; null: no limit",
        },
        "containers": {**LIMIT, "type": ["integer", "null"], "minimum": 0, "maximum": 10**9},
        "stored_bytes": {**LIMIT, "type": ["integer", "null"], "minimum": 0, "maximum": 10**18},
        "balancers": {**LIMIT, "type": ["integer", "null"], "minimum": 0, "maximum": 10**9},
    },
}

BODIES = {
    "NodeCreate": NODE_CREATE,
    "NodeAction": NODE_ACTION,
    "NodeDeploy": DEPLOY,
    "NodeExec": NODE_EXEC,
    "AccountCreate": ACCOUNT_CREATE,
    "KeyCreate": KEY_CREATE,
    "ContainerCreate": CONTAINER_CREATE,
    "ObjectUrl": OBJECT_URL,
    "BalancerCreate": BALANCER_CREATE,
    "MemberCreate": MEMBER_CREATE,
    "QuotaUpdate": QUOTA_UPDATE,
}

_validators = {
    name: jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    for name, schema in BODIES.items()
}


def validate(name: str, body: Any) -> dict[str, Any]:
    """Return ``body`` if it matches schema ``name``; else :class:`InvalidInput`."""
    errors = sorted(_validators[name].iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        field = ".".join(str(part) for part in error.absolute_path)
        if error.validator == "required":
            missing = error.message.split("'")[1]
            field = f"{field}.{missing}" if field else missing
            message = f"{field}: is required"
        elif error.validator == "additionalProperties":
            message = f"{field or 'body'}: {error.message}"
        else:
            message = f"{field or 'body'}: {error.message}"
        raise InvalidInput(message[:500], field=field or None)
    return normalize(BODIES[name], body)  # type: ignore[no-any-return]


def normalize(schema: dict[str, Any], value: Any) -> Any:
    """Valid data in the types code expects: JSON Schema counts 4.0 as an
    integer, Python's range() does not."""
    kind = schema.get("type")
    if kind == "integer" and isinstance(value, float):
        return int(value)
    if kind == "object" and isinstance(value, dict):
        properties = schema.get("properties", {})
        return {key: normalize(properties.get(key, {}), item) for key, item in value.items()}
    if kind == "array" and isinstance(value, list):
        return [normalize(schema.get("items", {}), item) for item in value]
    return value

"""Service configuration: one INI file plus ``OVERCAST_<SECTION>__<KEY>`` overrides.

Every option is a field of a section dataclass below, with its default and a
help text in the field's metadata; the same table parses files, reads the
environment and writes ``etc/overcast/overcast.conf.sample``
(``overcast-manage config sample``). A bad value fails at start-up with
:class:`ConfigError` naming the option.
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_STATE_DIR = "var"


class ConfigError(ValueError):
    """An option is missing or has a value of the wrong kind."""


def option(default: Any, help: str, choices: tuple[str, ...] = ()) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class DatabaseSection:
    connection: str = option(
        f"sqlite:///{DEFAULT_STATE_DIR}/overcast.sqlite",
        "SQLAlchemy URL of the database, e.g. postgresql+psycopg://user@host/overcast.",
    )
    pool_size: int = option(10, "Connections kept open per process (not for SQLite).")
    pool_timeout: float = option(10.0, "Seconds to wait for a free connection.")


@dataclass(frozen=True)
class MessagingSection:
    transport_url: str = option(
        "memory://", "kombu URL of the broker: amqp://user:pass@host:5672// for RabbitMQ."
    )
    prefetch: int = option(16, "Messages a consumer holds unacknowledged at once.")
    max_deliveries: int = option(
        5, "Failed handler attempts before a message goes to the dead-letter queue."
    )
    polling_interval: float = option(
        0.005, "Seconds between polls for transports that poll (memory://)."
    )
    connect_timeout: float = option(5.0, "Seconds to wait for the broker when publishing.")


@dataclass(frozen=True)
class ApiSection:
    bind: str = option("127.0.0.1:8774", "host:port the API listens on.")
    workers: int = option(1, "API processes sharing the listening socket.")
    threads: int = option(16, "Request threads per API process.")
    keep_alive_connections: int = option(
        1024,
        "Idle keep-alive client connections an API process keeps open (they hold "
        "no thread); beyond that, answers close their connection.",
    )
    max_body_bytes: int = option(1048576, "Largest request body accepted (413 above).")
    default_limit: int = option(100, "Page size when a list request gives no limit.")
    max_limit: int = option(1000, "Largest page size a list request may ask for.")
    key_cache_seconds: float = option(
        0.5,
        "Seconds an API process trusts a key lookup; a revoked or expired key is "
        "refused by every process within this time. Keep it under 1.",
    )


@dataclass(frozen=True)
class SchedulerSection:
    alternates: int = option(3, "Ranked alternate placements kept for failover.")
    default_policy: str = option(
        "cheapest",
        "Placement policy when a request names none.",
        ("cheapest", "round_robin", "zone_aware"),
    )
    filters: str = option(
        "resources,image,geography,providers,price,health,quota",
        "Comma-separated scheduler filters, applied in this order.",
    )
    health_failures: int = option(
        3, "Failed provider calls in a row after which an account cools down."
    )
    health_cooldown: float = option(60.0, "Seconds an unhealthy account is skipped.")

    @property
    def filter_names(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.filters.split(",") if name.strip())


@dataclass(frozen=True)
class WorkerSection:
    pool_size: int = option(8, "Threads handling messages in one worker process.")
    poll_interval: float = option(2.0, "Seconds between state polls of an account.")
    catalog_sync_interval: float = option(3600.0, "Seconds between catalog syncs of an account.")
    lease_seconds: float = option(30.0, "How long a poll or sync lease on an account lasts.")
    provider_retries: int = option(4, "Retries of a transient provider error.")
    provider_backoff: float = option(0.5, "First backoff (seconds) between those retries.")
    build_timeout: float = option(900.0, "Seconds a node may take to run before it errors.")
    deploy_timeout: float = option(600.0, "Seconds a deployment may take in all.")
    deploy_connect_attempts: int = option(10, "SSH connection attempts before a deploy fails.")
    deploy_connect_timeout: float = option(10.0, "Seconds each SSH connection attempt may take.")
    quota_reconcile_interval: float = option(
        300.0, "Seconds between recomputations of every project's quota usage."
    )


@dataclass(frozen=True)
class SecuritySection:
    encryption_key: str = option(
        "", "Fernet key encrypting provider credentials (overcast-manage key generate-fernet)."
    )


@dataclass(frozen=True)
class PricingSection:
    overrides_file: str = option("", "JSON file of operator prices that win over bundled ones.")
    cache_file: str = option(f"{DEFAULT_STATE_DIR}/pricing.json", "Where updates are kept.")
    stale_after: float = option(
        7.0, "Days after which a price is flagged stale (and skipped when asked)."
    )
    refresh_interval: float = option(
        21600.0, "Seconds between workers' refreshes from the price APIs (0: never)."
    )
    ec2_endpoint: str = option(
        "", "AWS Price List Query API URL, signed with the first ec2 account's keys (empty: AWS's)."
    )
    azure_endpoint: str = option("", "Azure Retail Prices API URL (empty: Azure's).")
    gce_endpoint: str = option("", "Cloud Billing Catalog API URL (empty: Google's).")
    gce_api_key: str = option("", "API key for the Cloud Billing Catalog API.")


@dataclass(frozen=True)
class MetricsSection:
    bind: str = option(
        "",
        "host:port where the API process serves /metrics to anyone who can reach it "
        "(empty: only GET /metrics on the API, with an operator key).",
    )
    multiprocess_dir: str = option(
        "",
        "Directory where every process of this host writes its figures, summed by "
        "any scrape (needed with [api] workers > 1); empty it before they start.",
    )


@dataclass(frozen=True)
class ServiceSection:
    heartbeat_interval: float = option(5.0, "Seconds between service heartbeats.")
    dead_after: float = option(30.0, "A service without a heartbeat this long is down.")
    state_dir: str = option(DEFAULT_STATE_DIR, "Directory for local state (all-in-one, keys).")
    log_level: str = option("INFO", "Logging level.", ("DEBUG", "INFO", "WARNING", "ERROR"))


@dataclass(frozen=True)
class Config:
    database: DatabaseSection = field(default_factory=DatabaseSection)
    messaging: MessagingSection = field(default_factory=MessagingSection)
    api: ApiSection = field(default_factory=ApiSection)
    scheduler: SchedulerSection = field(default_factory=SchedulerSection)
    worker: WorkerSection = field(default_factory=WorkerSection)
    security: SecuritySection = field(default_factory=SecuritySection)
    pricing: PricingSection = field(default_factory=PricingSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    service: ServiceSection = field(default_factory=ServiceSection)

    def replace(self, **sections: Mapping[str, Any]) -> Config:
        """A copy with some options changed: ``config.replace(api={"threads": 4})``."""
        changed = {
            name: dataclasses.replace(getattr(self, name), **values)
            for name, values in sections.items()
        }
        return dataclasses.replace(self, **changed)


def _sections() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config)}


def _convert(section: str, name: str, kind: Any, text: str, choices: tuple[str, ...]) -> Any:
    where = f"[{section}] {name}"
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(text)
            return lowered in ("1", "true", "yes", "on")
        value = kind(text.strip())
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not a valid {kind.__name__}") from None
    if choices and value not in choices:
        raise ConfigError(f"{where}: {text!r} is not one of {', '.join(choices)}")
    if kind in (int, float) and value < 0:
        raise ConfigError(f"{where}: must not be negative")
    return value


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Read ``path`` (if given) then the environment; raise :class:`ConfigError`."""
    environ = os.environ if environ is None else environ
    parser = configparser.ConfigParser(interpolation=None)
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"config file {path} does not exist")
        parser.read(path)
    sections = _sections()
    for section in parser.sections():
        if section not in sections:
            raise ConfigError(f"unknown section [{section}] in {path}")
        known = {f.name for f in dataclasses.fields(sections[section])}
        for name in parser[section]:
            if name not in known:
                raise ConfigError(f"unknown option [{section}] {name} in {path}")
    values: dict[str, Any] = {}
    for section, section_type in sections.items():
        hints = typing.get_type_hints(section_type)
        kwargs = {}
        for option_field in dataclasses.fields(section_type):
            text = environ.get(f"OVERCAST_{section.upper()}__{option_field.name.upper()}")
            if text is None and parser.has_option(section, option_field.name):
                text = parser.get(section, option_field.name)
            if text is not None:
                kwargs[option_field.name] = _convert(
                    section,
                    option_field.name,
                    hints[option_field.name],
                    text,
                    option_field.metadata["choices"],
                )
        values[section] = section_type(**kwargs)
    return Config(**values)


def sample() -> str:
    """The documented sample file: every option, its help and its default."""
    lines = [
        "# Overcast configuration. Every option is shown with its default.",
        "# Any option can also be set as OVERCAST_<SECTION>__<OPTION>, e.g.",
        "# OVERCAST_DATABASE__CONNECTION=postgresql+psycopg://overcast@db/overcast",
        "",
    ]
    for section, section_type in _sections().items():
        lines.append(f"[{section}]")
        for option_field in dataclasses.fields(section_type):
            lines.append(f"# {option_field.metadata['help']}")
            if option_field.metadata["choices"]:
                lines.append(f"# One of: {', '.join(option_field.metadata['choices'])}.")
            lines.append(f"#{option_field.name} = {option_field.default}")
        lines.append("")
    return "\n".join(lines)

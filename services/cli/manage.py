"""``overcast-manage``: operator tasks run against the database directly."""

from __future__ import annotations

import datetime
import json
import sys
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from drivers import pricing
from services.common import bootstrap, keys, quotas
from services.common.config import ConfigError, load_config, sample
from services.common.context import ServiceContext, build_context
from services.common.crypto import generate_key
from services.common.db import migrate
from services.common.db.models import Account, ApiKey, Project, utcnow
from services.common.db.session import session_scope
from services.common.errors import ServiceError
from services.worker import prices


class Manage(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ConfigError, ServiceError, ValueError) as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=Manage)
@click.option(
    "--config-file",
    type=click.Path(dir_okay=False),
    default=None,
    envvar="OVERCAST_CONFIG_FILE",
    help="INI file (see overcast.conf.sample).",
)
@click.pass_context
def main(ctx: click.Context, config_file: str | None) -> None:
    """Operator commands: schema, projects, keys, accounts, prices."""
    ctx.obj = load_config(config_file)


def _context(ctx: click.Context) -> ServiceContext:
    return build_context(ctx.obj)


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create or upgrade the schema to the newest migration."""
    migrate.upgrade(ctx.obj.database.connection)
    click.echo("database is at the newest schema")


@db.command("check")
@click.pass_context
def db_check(ctx: click.Context) -> None:
    """Fail if the database schema differs from the models."""
    differences = migrate.drift(ctx.obj.database.connection)
    if differences:
        for difference in differences:
            click.echo(f"drift: {difference}")
        sys.exit(1)
    click.echo("no drift")


@main.group()
def project() -> None:
    """Projects."""


@project.command("create")
@click.argument("name")
@click.pass_context
def project_create(ctx: click.Context, name: str) -> None:
    click.echo(bootstrap.ensure_project(_context(ctx), name))


class Limit(click.ParamType):  # type: ignore[type-arg]
    """A quota limit: a non-negative number, or ``unlimited``."""

    name = "limit"

    def __init__(self, kind: type) -> None:
        self.kind = kind

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("unlimited", "none"):
            return UNLIMITED
        try:
            number = self.kind(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number or 'unlimited'", param, ctx)
        if number < 0:
            self.fail("must not be negative", param, ctx)
        return number


UNLIMITED = "unlimited"


def _project(session: Session, name: str) -> Project:
    found = session.scalars(select(Project).where(Project.name == name)).first()
    if found is None:
        raise click.ClickException(f"no project named {name}")
    return found


@project.command("set-quota")
@click.argument("name")
@click.option("--max-nodes", type=Limit(int), help="Most live nodes.")
@click.option("--max-vcpus", type=Limit(int), help="Most vCPUs over live nodes.")
@click.option("--max-ram-mb", type=Limit(int), help="Most MB of RAM over live nodes.")
@click.option("--max-price-per-hour", type=Limit(float), help="Most USD per hour over live nodes.")
@click.option("--max-containers", type=Limit(int), help="Most object-storage containers.")
@click.option("--max-stored-bytes", type=Limit(int), help="Most bytes of stored objects.")
@click.pass_context
def project_set_quota(ctx: click.Context, /, name: str, **given: Any) -> None:
    """Set a project's limits: each option given changes (a number, or
    'unlimited'); the others stay as they are."""
    limits = {
        option[len("max_") :]: None if value == UNLIMITED else value
        for option, value in given.items()
        if value is not None
    }
    if not limits:
        raise click.UsageError("give at least one --max-* option")
    context = _context(ctx)
    with session_scope(context.sessions) as session:
        project_id = _project(session, name).id
        quotas.set_limits(session, project_id, limits)
        report = quotas.report(session, project_id)
    _echo_quota(name, report)


@project.command("quota")
@click.argument("name")
@click.option("--reconcile", is_flag=True, help="Recompute usage from the live resources first.")
@click.pass_context
def project_quota(ctx: click.Context, name: str, reconcile: bool) -> None:
    """Show a project's limits and usage."""
    context = _context(ctx)
    with session_scope(context.sessions) as session:
        project_id = _project(session, name).id
        if reconcile:
            for resource, (was, now) in quotas.reconcile(session, project_id).items():
                click.echo(f"corrected {resource}: {was} -> {now} (stored units)")
    with session_scope(context.sessions) as session:
        _echo_quota(name, quotas.report(session, project_id))


def _echo_quota(name: str, report: dict[str, Any]) -> None:
    click.echo(f"{name}:")
    for resource in quotas.RESOURCES:
        entry = report[resource]
        limit = "unlimited" if entry["limit"] is None else entry["limit"]
        click.echo(f"  {resource:15} used {entry['used']} of {limit}")


@main.group()
def key() -> None:
    """API keys and the encryption key."""


@key.command("create")
@click.argument("project_name")
@click.option("--name", default="default", show_default=True)
@click.option("--role", type=click.Choice(keys.ROLES), default="member", show_default=True)
@click.option("--expires-in-days", type=click.FloatRange(min=0, min_open=True), default=None)
@click.pass_context
def key_create(
    ctx: click.Context, project_name: str, name: str, role: str, expires_in_days: float | None
) -> None:
    """Create an API key (printed once; only its hash is stored). Operator keys
    reach every project and can only be made here."""
    context = _context(ctx)
    expires_at = utcnow() + datetime.timedelta(days=expires_in_days) if expires_in_days else None
    with session_scope(context.sessions) as session:
        _, secret = keys.issue(session, _project(session, project_name).id, name, role, expires_at)
    click.echo(secret)


@key.command("list")
@click.option("--project", "project_name", default=None, help="Only this project's keys.")
@click.option("--all", "show_all", is_flag=True, help="Also revoked and expired keys.")
@click.pass_context
def key_list(ctx: click.Context, project_name: str | None, show_all: bool) -> None:
    """List keys by id and prefix (a key is never shown again after creation)."""
    context = _context(ctx)
    with session_scope(context.sessions) as session:
        query = select(ApiKey, Project.name).join(Project, Project.id == ApiKey.project_id)
        if project_name:
            query = query.where(Project.name == project_name)
        for row, project_name_of in session.execute(query.order_by(ApiKey.created_at)):
            status = keys.status(row)
            if status != "active" and not show_all:
                continue
            used = row.last_used_at.isoformat(timespec="seconds") if row.last_used_at else "never"
            expires = row.expires_at.isoformat(timespec="seconds") if row.expires_at else "never"
            click.echo(
                f"{row.id}  {row.prefix or '?':12} {project_name_of:16} {row.role:9} "
                f"{row.name:16} {status:8} last used {used}  expires {expires}"
            )


def _key(session: Session, key_id: str) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise click.ClickException(f"no key {key_id}")
    return row


@key.command("revoke")
@click.argument("key_id")
@click.pass_context
def key_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke a key: every API process refuses it within [api] key_cache_seconds."""
    context = _context(ctx)
    with session_scope(context.sessions) as session:
        keys.revoke(session, _key(session, key_id))
    click.echo(f"{key_id} revoked")


@key.command("rotate")
@click.argument("key_id")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds the old key keeps working (0: revoked at once).",
)
@click.pass_context
def key_rotate(ctx: click.Context, key_id: str, grace: float) -> None:
    """Replace a key with a new one of the same project, name and role; prints it once."""
    context = _context(ctx)
    with session_scope(context.sessions) as session:
        replacement, secret = keys.rotate(session, _key(session, key_id), grace)
        click.echo(f"{replacement.id} replaces {key_id}", err=True)
    click.echo(secret)


@key.command("generate-fernet")
def key_generate_fernet() -> None:
    """Print a new value for [security] encryption_key."""
    click.echo(generate_key())


@main.group()
def account() -> None:
    """Provider accounts."""


@account.command("add")
@click.argument("project_name")
@click.argument("name")
@click.argument("provider")
@click.option("--credentials", default="{}", help="JSON object (stored encrypted).")
@click.option("--options", default="{}", help="JSON object of driver options.")
@click.pass_context
def account_add(
    ctx: click.Context, project_name: str, name: str, provider: str, credentials: str, options: str
) -> None:
    try:
        credentials_value, options_value = json.loads(credentials), json.loads(options)
    except ValueError as error:
        raise click.ClickException(f"--credentials/--options must be JSON: {error}") from None
    context = _context(ctx)
    project_id = bootstrap.ensure_project(context, project_name)
    click.echo(
        bootstrap.ensure_account(
            context, project_id, name, provider, credentials_value, options_value
        )
    )


@account.command("list")
@click.pass_context
def account_list(ctx: click.Context) -> None:
    context = _context(ctx)
    with session_scope(context.sessions) as session:
        for row in session.scalars(select(Account).where(Account.deleted_at.is_(None))):
            synced = row.catalog_synced_at.isoformat() if row.catalog_synced_at else "never"
            click.echo(f"{row.id}  {row.name:20} {row.provider:10} synced {synced}")


@main.group("pricing")
def pricing_group() -> None:
    """Price data."""


@pricing_group.command("update")
@click.argument("url")
@click.pass_context
def pricing_update(ctx: click.Context, url: str) -> None:
    """Download, validate and install newer price data from URL."""
    config = ctx.obj
    store = pricing.PricingStore(
        cache_path=config.pricing.cache_file, override_path=config.pricing.overrides_file or None
    )
    try:
        updated = store.update(url)
    except (pricing.InvalidPricingData, OSError) as error:
        raise click.ClickException(f"price data not updated: {error}") from None
    click.echo(f"price data of {updated} installed at {config.pricing.cache_file}")


@pricing_group.command("refresh")
@click.option(
    "--provider",
    "providers",
    multiple=True,
    help="Only this provider (repeatable); default: every provider an account uses.",
)
@click.pass_context
def pricing_refresh(ctx: click.Context, providers: tuple[str, ...]) -> None:
    """Fetch current prices from the providers' price APIs and re-rank the offers.

    A provider whose fetch fails keeps its last good prices; the command then
    exits non-zero.
    """
    context = _context(ctx)
    for provider in providers:
        if provider not in prices.FETCHERS:
            raise click.BadParameter(_no_price_api(provider), param_hint="--provider")
    if not providers:
        with session_scope(context.sessions) as session:
            providers = tuple(prices.providers_in_use(session))
        if not providers:
            raise click.ClickException(
                "no account uses a provider with a price API "
                f"({', '.join(prices.FETCHERS)}); name one with --provider"
            )
    results = []
    with click.progressbar(
        providers,
        label="refreshing prices",
        item_show_func=lambda provider: provider,
        file=sys.stderr,
    ) as bar:
        for provider in bar:
            results.append(prices.refresh(context, provider))
    for result in results:
        click.echo(_refresh_summary(result))
    if not all(result.ok for result in results):
        sys.exit(1)


def _no_price_api(provider: str) -> str:
    if provider in prices.OVERRIDE_ONLY:
        return (
            f"{provider} has no price API: its prices are operator overrides "
            "([pricing] overrides_file)"
        )
    return f"no price API for {provider!r}; known: {', '.join(prices.FETCHERS)}"


def _refresh_summary(result: prices.RefreshResult) -> str:
    if not result.ok:
        return f"{result.provider}: FAILED, the last good prices stay: {result.error}"
    lines = [
        f"{result.provider}: {result.prices} prices ({result.added} new, {result.removed} gone, "
        f"{result.changed} changed); {result.offers_repriced} offers re-priced"
    ]
    for move in result.largest_moves:
        lines.append(
            f"  {move.size} {move.region}: {move.old:g} -> {move.new:g} USD/h "
            f"({(move.ratio - 1) * 100:+.1f}%)"
        )
    return "\n".join(lines)


@pricing_group.command("status")
@click.pass_context
def pricing_status(ctx: click.Context) -> None:
    """Where prices come from, per provider, and how the last refreshes went."""
    context = _context(ctx)
    store = pricing.default_store()
    click.echo(f"bundled price data of {store.updated}")
    overrides = context.config.pricing.overrides_file
    click.echo(f"operator overrides: {overrides or 'none'}")
    with session_scope(context.sessions) as session:
        for row in prices.refreshes(session):
            last = row.refreshed_at.isoformat(timespec="seconds") if row.refreshed_at else "never"
            line = f"{row.provider:10} fetched {row.prices} prices, last good refresh {last}"
            if row.failures:
                line += f"; {row.failures} failed ({row.consecutive_failures} in a row)"
            if row.last_error:
                line += f"; last error: {row.last_error}"
            click.echo(line)
    for provider in prices.OVERRIDE_ONLY:
        click.echo(f"{provider:10} no price API: operator overrides only")


@main.group("config")
def config_group() -> None:
    """Configuration."""


@config_group.command("sample")
def config_sample() -> None:
    """Print the documented sample configuration."""
    click.echo(sample())

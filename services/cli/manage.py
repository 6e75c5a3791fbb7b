"""``overcast-manage``: operator tasks run against the database directly."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from sqlalchemy import select

from drivers import pricing
from services.common import bootstrap
from services.common.config import ConfigError, load_config, sample
from services.common.context import ServiceContext, build_context
from services.common.crypto import generate_key
from services.common.db import migrate
from services.common.db.models import Account, Project
from services.common.db.session import session_scope
from services.common.errors import ServiceError


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


@project.command("set-quota")
@click.argument("name")
@click.option(
    "--max-nodes",
    type=click.IntRange(min=0),
    default=None,
    help="Most live nodes (omit for no limit).",
)
@click.pass_context
def project_set_quota(ctx: click.Context, name: str, max_nodes: int | None) -> None:
    """Set (or clear) a project's node quota."""
    context = _context(ctx)
    with session_scope(context.sessions) as session:
        found = session.scalars(select(Project).where(Project.name == name)).first()
        if found is None:
            raise click.ClickException(f"no project named {name}")
        found.max_nodes = max_nodes
    click.echo(f"{name}: max_nodes = {'unlimited' if max_nodes is None else max_nodes}")


@main.group()
def key() -> None:
    """API keys and the encryption key."""


@key.command("create")
@click.argument("project_name")
@click.option("--name", default="default", show_default=True)
@click.option("--role", type=click.Choice(bootstrap.ROLES), default="member", show_default=True)
@click.pass_context
def key_create(ctx: click.Context, project_name: str, name: str, role: str) -> None:
    """Create an API key (printed once; only its hash is stored)."""
    context = _context(ctx)
    with session_scope(context.sessions) as session:
        found = session.scalars(select(Project).where(Project.name == project_name)).first()
    if found is None:
        raise click.ClickException(f"no project named {project_name}")
    click.echo(bootstrap.create_key(context, found.id, name, role))


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


@main.group("config")
def config_group() -> None:
    """Configuration."""


@config_group.command("sample")
def config_sample() -> None:
    """Print the documented sample configuration."""
    click.echo(sample())

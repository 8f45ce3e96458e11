"""Bring a ClickHouse database to the schema version this code expects."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from aiusage.errors import SchemaError
from aiusage.schema import ddl
from aiusage.schema.ddl import SchemaContext
from aiusage.schema.migrations import MIGRATIONS, Migration, check_order, latest_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MigrationResult:
    applied: tuple[int, ...]
    version: int
    ttl_changed: bool


def plan(ctx: SchemaContext, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Every statement a fresh database needs, in order (for ``migrate --print-sql``)."""
    check_order(migrations)
    statements = [ddl.create_database(ctx), ddl.create_migrations_table(ctx)]
    for migration in migrations:
        statements.extend(migration.statements(ctx))
    return statements


def applied_versions(client: Client, ctx: SchemaContext) -> set[int]:
    rows = client.query(f"SELECT DISTINCT version FROM {ctx.table(ddl.MIGRATIONS)}").result_rows
    return {int(row[0]) for row in rows}


def migrate(
    client: Client, ctx: SchemaContext, migrations: Sequence[Migration] = MIGRATIONS
) -> MigrationResult:
    """Apply every migration not yet recorded, then reconcile the raw log's TTL.

    Safe to run again and from several processes at once: statements are idempotent
    and the migrations table collapses repeated records of a version.
    """
    check_order(migrations)
    client.command(ddl.create_database(ctx))
    client.command(ddl.create_migrations_table(ctx))
    done = applied_versions(client, ctx)
    newest = latest_version(migrations)
    if done and max(done) > newest:
        raise SchemaError(
            f"database {ctx.database} is at schema version {max(done)}, newer than this "
            f"aiusage knows ({newest}); upgrade aiusage"
        )
    applied = []
    for migration in migrations:
        if migration.version in done:
            continue
        log.info("applying schema migration %d (%s)", migration.version, migration.name)
        for statement in migration.statements(ctx):
            client.command(statement)
        client.insert(
            ddl.MIGRATIONS,
            [[migration.version, migration.name]],
            column_names=["version", "name"],
            database=ctx.database,
        )
        applied.append(migration.version)
    ttl_changed = reconcile_log_ttl(client, ctx)
    return MigrationResult(applied=tuple(applied), version=newest, ttl_changed=ttl_changed)


def reconcile_log_ttl(client: Client, ctx: SchemaContext) -> bool:
    """Make the raw log's TTL match the setting; return whether it changed."""
    engine_full = client.query(
        "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": ctx.database, "t": ddl.RAW_LOG},
    ).result_rows[0][0]
    has_ttl = " TTL " in f" {engine_full} "
    if ctx.log_ttl_days is None:
        if not has_ttl:
            return False
    elif f"TTL {ddl.log_ttl_expression(ctx.log_ttl_days)}" in engine_full:
        return False
    log.info("setting the raw log's retention to %s days", ctx.log_ttl_days or "unlimited")
    client.command(ddl.set_log_ttl(ctx))
    return True

"""``aiusage migrate``: apply the ClickHouse schema."""

from __future__ import annotations

import argparse
from typing import Any

from aiusage.clickhouse import connect
from aiusage.schema import context_for, migrate, plan
from aiusage.settings import ClickHouseSettings, load


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "migrate",
        help="create or upgrade the ClickHouse schema (idempotent)",
        description="Apply every schema migration not yet recorded in the database, "
        "then set the raw log's retention TTL from AIUSAGE_CLICKHOUSE_LOG_TTL_DAYS.",
    )
    parser.add_argument(
        "--print-sql",
        action="store_true",
        help="print the DDL for a fresh database and exit, touching nothing",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load(ClickHouseSettings)
    ctx = context_for(settings)
    if args.print_sql:
        print(";\n\n".join(plan(ctx)) + ";")
        return 0
    client = connect(settings)
    try:
        result = migrate(client, ctx)
    finally:
        client.close()
    applied = ", ".join(map(str, result.applied)) or "none"
    print(
        f"schema of {ctx.database} at {settings.target().display} is at version "
        f"{result.version} (applied now: {applied}"
        f"{'; retention changed' if result.ttl_changed else ''})"
    )
    return 0

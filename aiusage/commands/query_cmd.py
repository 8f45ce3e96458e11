"""``aiusage query org``: one organization's usage over a range, as a table, JSON or CSV."""

from __future__ import annotations

import argparse
import csv
import io
import json
from datetime import date, datetime
from typing import Any

from aiusage.clickhouse import connect
from aiusage.errors import ConfigError
from aiusage.logsetup import configure
from aiusage.schema import context_for
from aiusage.settings import ClickHouseSettings, LogSettings, load


def parse_bound(text: str) -> date | datetime:
    """YYYY-MM-DD (midnight UTC) or an ISO 8601 datetime with an offset."""
    from query.api import BadRequest
    from query.api import parse_bound as parse

    try:
        return parse(text)
    except BadRequest as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "query",
        help="usage of an organization over a range",
        description="Read usage the way dashboards do: exact, and explained.",
    )
    actions = parser.add_subparsers(
        title="actions", dest="action", metavar="ACTION", parser_class=type(parser)
    )
    actions.required = True
    org = actions.add_parser(
        "org",
        help="one organization's usage over [--start, --end)",
        description="Usage of ORG over [--start, --end): a date is midnight UTC, and --end is "
        "excluded (--start 2026-03-01 --end 2026-04-01 is March). Ranges longer than "
        "AIUSAGE_QUERY_ROLLUP_THRESHOLD_DAYS read clean whole days from the rollup; the "
        "answer always equals the raw log's.",
    )
    org.add_argument("organization_id", metavar="ORG")
    org.add_argument("--start", type=parse_bound, required=True)
    org.add_argument("--end", type=parse_bound, required=True)
    org.add_argument("--granularity", choices=["day", "total"], default="day")
    org.add_argument("--format", choices=["table", "json", "csv"], default="table")
    org.set_defaults(func=run_org)
    serve = actions.add_parser(
        "serve",
        help="the HTTP API on AIUSAGE_QUERY_HOST:AIUSAGE_QUERY_PORT",
        description="Serve GET /v1/organizations/{org}/usage, /healthz, /metrics and the "
        "OpenAPI spec (/openapi.json, /docs). AIUSAGE_QUERY_TOKENS scopes bearer tokens to "
        "organizations.",
    )
    serve.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from aggregator.settings import AggregatorSettings
    from aiusage.schema import migrate
    from query.http import create_app
    from query.settings import QuerySettings

    clickhouse = load(ClickHouseSettings)
    settings = load(QuerySettings)
    settle = load(AggregatorSettings).ingest_settle_s
    configure(load(LogSettings), secrets=clickhouse.secrets() + settings.secrets())
    client, parallel = connect(clickhouse), connect(clickhouse)
    ctx = context_for(clickhouse)
    migrate(client, ctx)
    try:
        app = create_app(client, ctx, settings, settle, parallel)
        uvicorn.run(app, host=settings.host, port=settings.port, log_config=None)
    finally:
        parallel.close()
        client.close()
    return 0


def run_org(args: argparse.Namespace) -> int:
    from aggregator.settings import AggregatorSettings
    from query.api import BadRequest, get_org_usage
    from query.settings import QuerySettings

    clickhouse = load(ClickHouseSettings)
    settings = load(QuerySettings)
    settle = load(AggregatorSettings).ingest_settle_s
    configure(load(LogSettings), secrets=clickhouse.secrets())
    client = connect(clickhouse)
    try:
        report = get_org_usage(
            client, context_for(clickhouse), args.organization_id, args.start, args.end,
            args.granularity, settings=settings, settle_s=settle,
        )  # fmt: skip
    except BadRequest as err:
        raise ConfigError(str(err)) from None
    finally:
        client.close()
    shape = report.as_json()
    if args.format == "json":
        print(json.dumps(shape, indent=2))
    elif args.format == "csv":
        print(render_csv(shape), end="")
    else:
        print(render_table(shape))
    return 0


COLUMNS = (
    "total_cost",
    "total_calls",
    "total_input_tokens",
    "total_cached_tokens",
    "total_output_tokens",
    "avg_cache_hit_rate",
)


def _rows(shape: dict[str, Any]) -> list[dict[str, Any]]:
    return [*shape["days"], {"date": "total", **shape["totals"]}]


def render_csv(shape: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["date", *COLUMNS], lineterminator="\n")
    writer.writeheader()
    for row in _rows(shape):
        writer.writerow({k: row[k] for k in ("date", *COLUMNS)})
    return out.getvalue()


def render_table(shape: dict[str, Any]) -> str:
    header = ("date", "cost (USD)", "calls", "input", "cached", "output", "cache hit")
    body = [
        (
            row["date"], row["total_cost"], f"{row['total_calls']:,}",
            f"{row['total_input_tokens']:,}", f"{row['total_cached_tokens']:,}",
            f"{row['total_output_tokens']:,}", f"{row['avg_cache_hit_rate']:.1%}",
        )
        for row in _rows(shape)
    ]  # fmt: skip
    widths = [max(len(str(r[i])) for r in (header, *body)) for i in range(len(header))]
    lines = ["  ".join(str(cell).rjust(w) for cell, w in zip(r, widths, strict=True))
             for r in (header, *body)]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    rollup = len(shape["rollup_days"])
    lines.append("")
    lines.append(
        f"{shape['organization_id']}  {shape['start']} .. {shape['end']}  route: {shape['route']}"
        f" ({rollup} day(s) from the rollup, {len(shape['raw_ranges'])} raw range(s))"
        f"  watermark: {shape['watermark'] or 'none'}"
    )
    return "\n".join(lines)

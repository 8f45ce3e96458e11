"""The HTTP API: ``GET /v1/organizations/{org}/usage``, with /healthz, /metrics and OpenAPI.

Optional bearer tokens, each scoped to organizations (AIUSAGE_QUERY_TOKENS). Every value
reaches ClickHouse as a bound parameter; a bad request is a 400 with a clear message.
"""

from __future__ import annotations

import hmac
import time
from typing import Annotated, Any, Literal

from clickhouse_connect.driver.client import Client
from fastapi import FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from aiusage.schema.ddl import SchemaContext
from query.api import BadRequest, UsageQuery, parse_bound
from query.settings import QuerySettings


def _authorize(settings: QuerySettings, authorization: str | None, org: str) -> None:
    if not settings.tokens:
        return
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401, "a bearer token is required", {"WWW-Authenticate": "Bearer"})
    presented = authorization.removeprefix("Bearer ").strip()
    scopes = next(
        (orgs for token, orgs in settings.tokens.items() if hmac.compare_digest(token, presented)),
        None,
    )
    if scopes is None:
        raise HTTPException(401, "unknown bearer token", {"WWW-Authenticate": "Bearer"})
    if "*" not in scopes and org not in scopes:
        raise HTTPException(403, f"this token may not read organization {org!r}")


def create_app(
    client: Client,
    ctx: SchemaContext,
    settings: QuerySettings,
    settle_s: float,
    parallel_client: Client | None = None,
) -> FastAPI:
    """``client`` should be the API's own handle: in chDB one handle runs one query at a
    time, and the consumer's inserts must not queue requests behind them."""
    app = FastAPI(
        title="aiusage",
        version="1",
        description="Exact AI usage per organization, from Kafka through ClickHouse.",
    )
    usage_query = UsageQuery(
        client, ctx, settings, settle_s=settle_s, parallel_client=parallel_client
    )
    registry = CollectorRegistry()
    requests = Counter(
        "aiusage_query_requests", "Usage requests, by status", ["status"], registry=registry
    )
    latency = Histogram("aiusage_query_seconds", "Usage request latency", registry=registry)

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}"
            for e in err.errors()
        ]
        requests.labels("400").inc()
        return JSONResponse({"detail": "; ".join(problems)}, status_code=400)

    @app.get("/v1/organizations/{organization_id}/usage", summary="Usage of one organization")
    def usage(
        organization_id: Annotated[str, Path(min_length=1, max_length=128)],
        start: Annotated[
            str, Query(description="YYYY-MM-DD (midnight UTC) or ISO 8601 with offset")
        ],
        end: Annotated[str, Query(description="excluded; same forms as start")],
        granularity: Literal["day", "total"] = "day",
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        started = time.perf_counter()
        _authorize(settings, authorization, organization_id)
        try:
            lo, hi = parse_bound(start), parse_bound(end)
            report = usage_query.org_usage(organization_id, lo, hi, granularity)
        except BadRequest as err:
            requests.labels("400").inc()
            raise HTTPException(400, str(err)) from None
        requests.labels("200").inc()
        latency.observe(time.perf_counter() - started)
        return report.as_json()

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, Any]:
        client.command("SELECT 1")
        return {"ok": True}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app

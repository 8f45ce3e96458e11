"""The HTTP API over real ClickHouse: shape, errors, auth scopes, OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient

from aiusage.clickhouse import connect
from aiusage.settings import ClickHouseSettings
from query.api import get_org_usage
from query.http import create_app
from query.settings import QuerySettings
from tests.integration.conftest import Dataset

URL = "/v1/organizations/{org}/usage"


@pytest.fixture
def api(dataset: Dataset) -> Iterator[TestClient]:
    settings = QuerySettings(tokens={"token-a": ["org-0001"], "token-all": ["*"]})
    # A second handle: the rollup and the touched days are read side by side.
    parallel = connect(ClickHouseSettings(dsn=dataset.dsn, database=dataset.ctx.database))
    app = create_app(dataset.client, dataset.ctx, settings, 0.0, parallel_client=parallel)
    with TestClient(app) as client:
        yield client
    parallel.close()


def _get(api: TestClient, org: str, token: str | None = "token-all", **params: str):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return api.get(URL.format(org=org), params=params, headers=headers)


def test_usage_has_the_shared_shape_and_matches_the_python_api(
    api: TestClient,
    dataset: Dataset,
) -> None:
    response = _get(api, "org-0001", start="2026-02-12T06:00:00Z", end="2026-03-11")
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"totals", "days", "route", "rollup_days", "raw_ranges", "watermark"}
    assert isinstance(body["totals"]["total_cost"], str)
    assert body["route"] == "hybrid"
    expected = (
        get_org_usage(
            dataset.client,
            dataset.ctx,
            "org-0001",
            "2026-02-12T06:00:00Z",
            "2026-03-11",  # type: ignore[arg-type]
        )
        if False
        else None
    )

    expected = get_org_usage(
        dataset.client, dataset.ctx, "org-0001",
        datetime(2026, 2, 12, 6, tzinfo=UTC), date(2026, 3, 11), settle_s=0.0,
    ).as_json()  # fmt: skip
    assert body == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2026-02-30", "end": "2026-03-01"}, "neither YYYY-MM-DD"),
        ({"start": "2026-03-01T00:00:00", "end": "2026-03-02"}, "needs an offset"),
        ({"start": "2026-03-02", "end": "2026-03-01"}, "must be after start"),
        ({"start": "2026-03-01", "end": "2026-03-02", "granularity": "week"}, "granularity"),
        ({"start": "2026-03-01"}, "end"),
    ],
)
def test_a_bad_request_is_a_400_with_a_clear_message(
    api: TestClient, params: dict[str, str], message: str
) -> None:
    response = _get(api, "org-0001", **params)
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_tokens_are_scoped_to_organizations(api: TestClient) -> None:
    params = {"start": "2026-03-01", "end": "2026-03-02"}
    assert _get(api, "org-0001", token="token-a", **params).status_code == 200
    assert _get(api, "org-0002", token="token-a", **params).status_code == 403
    assert _get(api, "org-0002", token="token-all", **params).status_code == 200
    assert _get(api, "org-0001", token=None, **params).status_code == 401
    assert _get(api, "org-0001", token="guess", **params).status_code == 401


def test_openapi_health_and_metrics(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    assert "/v1/organizations/{organization_id}/usage" in spec["paths"]
    assert api.get("/healthz").json() == {"ok": True}
    _get(api, "org-0001", start="2026-03-01", end="2026-03-02")
    assert "aiusage_query_requests_total" in api.get("/metrics").text

"""The Grafana dashboard and the BI user's SQL name only views that the schema creates."""

from __future__ import annotations

import json
import re
from pathlib import Path

from aiusage.schema import ddl

REPO = Path(__file__).resolve().parents[2]
VIEWS = {ddl.VIEW_DAILY, ddl.VIEW_LOG, ddl.VIEW_ORG_DAILY}


def test_dashboard_panels_read_only_the_views() -> None:
    dashboard = json.loads((REPO / "deploy/grafana/aiusage-dashboard.json").read_text())
    queries = [t["rawSql"] for p in dashboard["panels"] for t in p["targets"]]
    queries += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    assert queries
    for query in queries:
        named = set(re.findall(r"aiusage\.(\w+)", query))
        assert named and named <= VIEWS, query


def test_bi_user_is_granted_the_views_and_is_read_only() -> None:
    grants = (REPO / "deploy/clickhouse/bi-readonly-user.sql").read_text()
    for view in VIEWS:
        assert f"GRANT SELECT ON aiusage.{view} TO aiusage_bi;" in grants
    assert "readonly = 2" in grants
    assert not re.search(r"GRANT (INSERT|ALTER|ALL)", grants)

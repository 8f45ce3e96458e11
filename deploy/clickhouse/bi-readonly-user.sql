-- A read-only ClickHouse user for BI tools (server mode), limited to aiusage's views.
-- Replace the database name (aiusage) and the password before running:
--   clickhouse-client --multiquery < deploy/clickhouse/bi-readonly-user.sql
-- On a cluster, add ON CLUSTER '<cluster>' to each statement.

CREATE ROLE IF NOT EXISTS aiusage_bi;

-- The views, and nothing else: BI tools never see Kafka provenance or other tables.
GRANT SELECT ON aiusage.v_ai_usage_daily TO aiusage_bi;
GRANT SELECT ON aiusage.v_ai_usage_log TO aiusage_bi;
GRANT SELECT ON aiusage.v_ai_usage_org_daily TO aiusage_bi;
-- A view reads its tables with the querying user's grants (SQL SECURITY INVOKER is the
-- default for plain views), so the tables behind them are readable too, but not
-- writable; revoke these three and the BI user sees only the rollup.
GRANT SELECT ON aiusage.ai_usage_daily_aggregates TO aiusage_bi;
GRANT SELECT ON aiusage.ai_usage_log TO aiusage_bi;
GRANT SELECT ON aiusage.ai_usage_aggregation_runs TO aiusage_bi;
GRANT SELECT ON aiusage.ai_usage_touched_days TO aiusage_bi;

CREATE SETTINGS PROFILE IF NOT EXISTS aiusage_bi_profile SETTINGS
    readonly = 2,                 -- read-only, but a session may still set query settings
    max_execution_time = 60,
    max_memory_usage = 4000000000,
    max_result_rows = 1000000 TO aiusage_bi;

CREATE USER IF NOT EXISTS aiusage_bi IDENTIFIED WITH sha256_password BY 'change-me'
    DEFAULT ROLE aiusage_bi SETTINGS PROFILE aiusage_bi_profile;
GRANT aiusage_bi TO aiusage_bi;

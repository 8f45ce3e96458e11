"""The CLI against real services, in-process and as the installed console script."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from aiusage.cli import main
from aiusage.kafka_topics import delete_topics
from aiusage.schema.migrations import MIGRATIONS
from aiusage.settings import ClickHouseSettings, KafkaSettings

AIUSAGE = Path(sys.executable).with_name("aiusage")


def test_migrate_command_creates_the_schema(
    monkeypatch: pytest.MonkeyPatch,
    clickhouse: Client,
    clickhouse_settings: ClickHouseSettings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AIUSAGE_CLICKHOUSE_DSN", clickhouse_settings.dsn.get_secret_value())
    monkeypatch.setenv("AIUSAGE_CLICKHOUSE_DATABASE", clickhouse_settings.database_name)
    assert main(["migrate"]) == 0
    versions = [m.version for m in MIGRATIONS]
    applied = ", ".join(map(str, versions))
    assert f"is at version {versions[-1]} (applied now: {applied})" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert "(applied now: none)" in capsys.readouterr().out
    tables = {
        row[0]
        for row in clickhouse.query(
            "SELECT name FROM system.tables WHERE database = {db:String}",
            parameters={"db": clickhouse_settings.database_name},
        ).result_rows
    }
    assert {"ai_usage_log", "ai_usage_daily_aggregates"} <= tables


def test_topics_command_creates_both_topics(
    monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = f"cli-{os.getpid()}-{time.monotonic_ns()}"
    monkeypatch.setenv("AIUSAGE_KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("AIUSAGE_KAFKA_TOPIC", topic)
    monkeypatch.setenv("AIUSAGE_KAFKA_PARTITIONS", "2")
    try:
        assert main(["topics", "create"]) == 0
        out = capsys.readouterr().out
        assert f"created {topic} (2 partitions)" in out
        assert f"created {topic}.dlq (2 partitions)" in out
        assert main(["topics", "create"]) == 0
        assert f"exists  {topic}.dlq" in capsys.readouterr().out
    finally:
        delete_topics(
            KafkaSettings(bootstrap_servers=kafka_bootstrap, topic=topic), [topic, f"{topic}.dlq"]
        )


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIUSAGE_")}
    return subprocess.run(
        [str(AIUSAGE), *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_console_script_migrates_the_embedded_default(tmp_path: Path) -> None:
    done = _run(["migrate"], {}, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "chdb://" in done.stdout
    assert (tmp_path / ".aiusage" / "clickhouse").is_dir()


def test_a_chdb_directory_in_use_is_one_clear_line(tmp_path: Path) -> None:
    data = tmp_path / "held"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, clickhouse_connect\n"
            f"c = clickhouse_connect.get_client(dsn='chdb://{data}')\n"
            "c.command('SELECT 1'); print('open', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        done = _run(["migrate"], {"AIUSAGE_CLICKHOUSE_DSN": f"chdb://{data}"}, tmp_path)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "the chDB data directory is in use by another process" in lines[0]


def test_an_unreachable_server_is_one_line_without_the_password(tmp_path: Path) -> None:
    done = _run(
        ["migrate"], {"AIUSAGE_CLICKHOUSE_DSN": "http://meter:hunter2@127.0.0.1:1/db"}, tmp_path
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "aiusage: error: cannot connect to ClickHouse at http://meter:***@127.0.0.1:1/db: "
        "[Errno 111] Connection refused"
    ]


def test_invalid_settings_never_print_a_traceback(tmp_path: Path) -> None:
    done = _run(["migrate"], {"AIUSAGE_CLICKHOUSE_LOG_TTL_DAYS": "forever"}, tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "AIUSAGE_CLICKHOUSE_LOG_TTL_DAYS: " in done.stderr


def test_aggregate_once_and_backfill_commands(
    monkeypatch: pytest.MonkeyPatch,
    migrated: Client,
    clickhouse_settings: ClickHouseSettings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.integration.test_aggregator import _ingest, _workload

    db = clickhouse_settings.database_name
    _ingest(migrated, db, _workload(), "a")
    monkeypatch.setenv("AIUSAGE_CLICKHOUSE_DSN", clickhouse_settings.dsn.get_secret_value())
    monkeypatch.setenv("AIUSAGE_CLICKHOUSE_DATABASE", db)
    assert main(["aggregate", "once", "--date", "2026-03-03"]) == 0
    assert "aggregated 2026-03-03: 6 organizations" in capsys.readouterr().out
    assert main(["aggregate", "backfill", "--start", "2026-03-01", "--end", "2026-03-10"]) == 0
    captured = capsys.readouterr()
    assert "backfill 2026-03-01..2026-03-10: 10/10 days, 60 rollup rows" in captured.out
    assert "10/10" in captured.err  # the progress bar
    days = migrated.query(
        f"SELECT uniqExact(date) FROM `{db}`.ai_usage_daily_aggregates FINAL"
    ).result_rows[0][0]
    assert days == 10


def test_query_org_command_formats(
    monkeypatch: pytest.MonkeyPatch,
    migrated: Client,
    clickhouse_settings: ClickHouseSettings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import csv
    import io
    import json

    from tests.integration.test_aggregator import _ingest, _workload

    db = clickhouse_settings.database_name
    _ingest(migrated, db, _workload(), "a")
    monkeypatch.setenv("AIUSAGE_CLICKHOUSE_DSN", clickhouse_settings.dsn.get_secret_value())
    monkeypatch.setenv("AIUSAGE_CLICKHOUSE_DATABASE", db)
    argv = ["query", "org", "org-0001", "--start", "2026-03-01", "--end", "2026-03-11"]
    assert main([*argv, "--format", "json"]) == 0
    shape = json.loads(capsys.readouterr().out)
    assert shape["route"] == "raw"  # nothing aggregated yet
    assert len(shape["days"]) == 10
    assert main([*argv, "--format", "csv", "--granularity", "total"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[-1]["date"] == "total"
    assert rows[-1]["total_cost"] == shape["totals"]["total_cost"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "route: raw" in table and shape["totals"]["total_cost"] in table
    assert main(["query", "org", "x", "--start", "2026-03-02", "--end", "2026-03-01"]) == 2
    assert "must be after start" in capsys.readouterr().err

from __future__ import annotations

import pytest

from aiusage.cli import build_parser, main


def _subcommand_paths() -> list[list[str]]:
    return [
        [],
        ["migrate"],
        ["topics"],
        ["topics", "create"],
        ["settings"],
        ["consume"],
        ["produce"],
        ["aggregate"],
        ["aggregate", "run"],
        ["aggregate", "once"],
        ["aggregate", "backfill"],
        ["events", "schema"],
        ["query"],
        ["query", "org"],
        ["query", "serve"],
        ["serve"],
        ["demo"],
        ["dlq"],
        ["dlq", "replay"],
    ]


@pytest.mark.parametrize("path", _subcommand_paths())
def test_help_works_everywhere(path: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*path, "--help"])
    assert exit_.value.code == 0
    assert "usage: aiusage" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv", [["no-such-command"], ["migrate", "--bogus"], [], ["topics"], ["topics", "drop"]]
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "error:" in err
    assert "--help" in err


def test_invalid_settings_exit_2_with_one_line_per_field(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIUSAGE_KAFKA_PARTITIONS", "-1")
    monkeypatch.setenv("AIUSAGE_CLICKHOUSE_DSN", "mysql://x")
    assert main(["settings"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "aiusage: error: invalid settings"
    assert err[1].strip().startswith("AIUSAGE_KAFKA_PARTITIONS: ")
    assert err[2].strip().startswith("AIUSAGE_CLICKHOUSE_DSN: ")
    assert len(err) == 3


def test_settings_command_masks_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIUSAGE_CLICKHOUSE_DSN", "http://u:hunter2@ch:8123/db")
    monkeypatch.setenv("AIUSAGE_KAFKA_SASL_PASSWORD", "kafkapw")
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "kafkapw" not in out
    assert '"AIUSAGE_CLICKHOUSE_DSN": "http://u:***@ch:8123/db"' in out
    assert '"AIUSAGE_KAFKA_SASL_PASSWORD": "***"' in out


def test_print_sql_touches_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--print-sql"]) == 0
    out = capsys.readouterr().out
    assert "CREATE TABLE IF NOT EXISTS `aiusage`.`ai_usage_log`" in out
    assert "CREATE TABLE IF NOT EXISTS `aiusage`.`ai_usage_daily_aggregates`" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["aggregate", "once", "--date", "2026-13-01"], "is not a date"),
        (["aggregate", "once"], "required: --date"),
        (["aggregate", "backfill", "--start", "yesterday", "--end", "2026-01-01"], "not a date"),
        (["produce", "--events", "-5"], "must be at least 0"),
        (["produce", "--invalid-fraction", "1.5"], "must be in [0, 1)"),
        (["produce", "--end", "2026-01-01T00:00:00"], "needs an offset"),
    ],
)
def test_bad_operator_arguments_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]


def test_backfill_with_end_before_start_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["aggregate", "backfill", "--start", "2026-03-02", "--end", "2026-03-01"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["aiusage: error: --end 2026-03-01 is before --start 2026-03-02"]

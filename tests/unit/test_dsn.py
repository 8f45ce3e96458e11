from __future__ import annotations

from pathlib import Path

import pytest

from aiusage.dsn import default_dsn, parse_dsn, validate_identifier


def test_default_dsn_is_an_absolute_chdb_directory_under_the_working_directory(
    tmp_path: Path,
) -> None:
    target = parse_dsn(default_dsn(tmp_path))
    assert target.kind == "chdb"
    assert target.path == tmp_path.resolve() / ".aiusage" / "clickhouse"


def test_chdb_dsn_with_database_option() -> None:
    target = parse_dsn("chdb:///var/lib/aiusage?database=metering")
    assert (target.kind, target.path, target.database) == (
        "chdb",
        Path("/var/lib/aiusage"),
        "metering",
    )


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("chdb://relative/path", "absolute path"),
        ("chdb:///", "absolute data directory"),
        ("chdb:///x?mode=ro", "unknown chDB DSN option"),
        ("clickhouse://host:9000", "unsupported scheme 'clickhouse'"),
        ("/just/a/path", "unsupported scheme '(none)'"),
        ("http://:8123", "needs a host"),
        ("http://host:70000/db", "port"),
        ("http://host:8123/a/b", "one database name"),
        ("http://host:8123/bad-name", "database name"),
    ],
)
def test_bad_dsns_are_rejected_with_a_reason(dsn: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_dsn(dsn)


def test_server_dsn_parts_and_defaults() -> None:
    target = parse_dsn("https://alice:s%40cret@ch.example:9443/metering")
    assert target.kind == "http"
    assert (target.host, target.port, target.secure) == ("ch.example", 9443, True)
    assert (target.username, target.password, target.database) == ("alice", "s@cret", "metering")
    assert parse_dsn("http://h").port == 8123
    assert parse_dsn("https://h").port == 8443


def test_display_never_shows_the_password() -> None:
    target = parse_dsn("http://alice:hunter2@ch:8123/db")
    assert "hunter2" not in target.display
    assert target.display == "http://alice:***@ch:8123/db"
    assert "hunter2" not in repr(target)


def test_password_never_appears_in_a_dsn_error() -> None:
    with pytest.raises(ValueError) as err:
        parse_dsn("http://alice:hunter2@ch:99999/db")
    assert "hunter2" not in str(err.value)


@pytest.mark.parametrize("name", ["1abc", "a-b", "a b", "x;DROP", "", "a" * 129])
def test_identifiers_are_plain(name: str) -> None:
    with pytest.raises(ValueError):
        validate_identifier(name)

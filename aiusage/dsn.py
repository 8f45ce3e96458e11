"""Parsing and masking of ClickHouse DSNs.

Two forms are accepted:

* ``chdb:///absolute/path[?database=name]``: embedded chDB in a data directory;
* ``http[s]://[user[:password]@]host[:port][/database]``: a ClickHouse server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

DEFAULT_DATA_DIR = Path(".aiusage") / "clickhouse"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def default_dsn(cwd: Path | None = None) -> str:
    """The embedded default: a chDB directory under ``./.aiusage/clickhouse``."""
    base = (cwd or Path.cwd()).resolve()
    return f"chdb://{(base / DEFAULT_DATA_DIR).as_posix()}"


@dataclass(frozen=True)
class ClickHouseTarget:
    """Where ClickHouse lives, parsed from a DSN. ``password`` is never printed."""

    kind: Literal["chdb", "http"]
    database: str | None
    path: Path | None = None
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    secure: bool = False

    @property
    def display(self) -> str:
        """The DSN as it may appear in logs and errors: the password is masked."""
        if self.kind == "chdb":
            suffix = f"?database={self.database}" if self.database else ""
            return f"chdb://{self.path}{suffix}"
        scheme = "https" if self.secure else "http"
        auth = ""
        if self.username is not None:
            auth = quote(self.username, safe="")
            if self.password:
                auth += ":***"
            auth += "@"
        db = f"/{self.database}" if self.database else ""
        return f"{scheme}://{auth}{self.host}:{self.port}{db}"


def parse_dsn(dsn: str) -> ClickHouseTarget:
    """Parse a DSN, raising ``ValueError`` with a message that never contains the password."""
    dsn = dsn.strip()
    parts = urlsplit(dsn)
    scheme = parts.scheme.lower()
    if scheme == "chdb":
        return _parse_chdb(dsn)
    if scheme in ("http", "https"):
        return _parse_http(dsn, secure=scheme == "https")
    raise ValueError(
        f"unsupported scheme {scheme or '(none)'!r}: use chdb:///absolute/path "
        "or http(s)://user:password@host:port/database"
    )


def _parse_chdb(dsn: str) -> ClickHouseTarget:
    parts = urlsplit(dsn)
    if parts.netloc:
        raise ValueError(
            "a chDB DSN takes an absolute path, chdb:///absolute/path, "
            f"not a host ({parts.netloc!r})"
        )
    raw_path = unquote(parts.path)
    if not raw_path.startswith("/") or raw_path == "/":
        raise ValueError("a chDB DSN takes an absolute data directory: chdb:///absolute/path")
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"database"})
    if unknown:
        raise ValueError(f"unknown chDB DSN option(s): {', '.join(unknown)}")
    database = _database(query.get("database", [None])[-1])
    return ClickHouseTarget(kind="chdb", path=Path(raw_path), database=database)


def _parse_http(dsn: str, *, secure: bool) -> ClickHouseTarget:
    parts = urlsplit(dsn)
    if not parts.hostname:
        raise ValueError("a server DSN needs a host: http(s)://user:password@host:port/database")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the DSN's port is not a number from 1 to 65535") from None
    path = parts.path.strip("/")
    if "/" in path:
        raise ValueError("the DSN's path is one database name: http(s)://host:port/database")
    return ClickHouseTarget(
        kind="http",
        host=parts.hostname,
        port=port or (8443 if secure else 8123),
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        database=_database(path or None),
        secure=secure,
    )


def _database(name: str | None) -> str | None:
    if name is None:
        return None
    validate_identifier(name, what="database name")
    return name


def validate_identifier(name: str, *, what: str = "identifier") -> str:
    """Accept only plain ClickHouse identifiers, so that one can be quoted safely into DDL."""
    if not _IDENTIFIER.match(name):
        raise ValueError(
            f"{what} {name!r} must start with a letter or '_' and hold only letters, digits and '_'"
        )
    return name

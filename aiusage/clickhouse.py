"""Opening ClickHouse: embedded chDB or a server, behind one clickhouse-connect client."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from aiusage.dsn import ClickHouseTarget
from aiusage.errors import ClickHouseUnavailable
from aiusage.settings import ClickHouseSettings

log = logging.getLogger(__name__)


def connect(settings: ClickHouseSettings, **client_settings: Any) -> Client:
    """Open a client and prove it works with one round trip.

    Raises :class:`ClickHouseUnavailable` with a one-line message that names the
    DSN without its password.
    """
    target = settings.target()
    try:
        if target.kind == "chdb":
            client = _open_chdb(target)
        else:
            client = _open_server(target, settings, client_settings)
        client.command("SELECT 1")
    except ClickHouseUnavailable:
        raise
    except Exception as err:
        raise ClickHouseUnavailable(
            f"cannot connect to ClickHouse at {target.display}: {_reason(err, target)}"
        ) from err
    log.debug("connected to ClickHouse at %s", target.display)
    return client


def _open_chdb(target: ClickHouseTarget) -> Client:
    assert target.path is not None
    try:
        target.path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ClickHouseUnavailable(
            f"cannot create the chDB data directory {target.path}: {err.strerror}"
        ) from err
    try:
        with _engine_stderr_held_back():
            return clickhouse_connect.get_client(dsn=f"chdb://{target.path.as_posix()}")
    except Exception as err:
        if "already initialized with path" in str(err):
            raise ClickHouseUnavailable(
                f"cannot open ClickHouse at {target.display}: this process already opened "
                "another chDB data directory, and a process can open only one"
            ) from err
        if _locked_by_another_process(target.path):
            raise ClickHouseUnavailable(
                f"cannot open ClickHouse at {target.display}: the chDB data directory is in use "
                "by another process (a chDB directory can be opened by one process at a time: "
                "stop that process, or point AIUSAGE_CLICKHOUSE_DSN at a ClickHouse server)"
            ) from err
        raise


def _locked_by_another_process(path: Path) -> bool:
    """Whether a ClickHouse engine elsewhere holds the directory's status-file lock.

    Only called after this process failed to open the directory, so a lock seen here
    is not our own.
    """
    status = path / "status"
    if not status.exists():
        return False
    with status.open("rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


@contextlib.contextmanager
def _engine_stderr_held_back() -> Iterator[None]:
    """The engine prints its start-up errors straight to fd 2; keep them for a failure only.

    On success whatever it printed is passed on; on failure our one-line error says it.
    """
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        ok = False
        try:
            yield
            ok = True
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if ok:
                held.seek(0)
                text = held.read()
                if text:
                    os.write(2, text)


def _open_server(
    target: ClickHouseTarget, settings: ClickHouseSettings, client_settings: dict[str, Any]
) -> Client:
    return clickhouse_connect.get_client(
        host=target.host,
        port=target.port,
        username=target.username or "default",
        password=target.password or "",
        secure=target.secure,
        connect_timeout=settings.connect_timeout_s,
        send_receive_timeout=settings.send_receive_timeout_s,
        settings=client_settings or None,
    )


_OS_ERROR = re.compile(r"\[Errno -?\d+\][^'\")]*")
_SERVER_ERROR = re.compile(r"Code: \d+\. DB::Exception: .*?\((?:[A-Z_]+)\)")


def _reason(err: BaseException, target: ClickHouseTarget) -> str:
    """The telling part of an error, without the password, trimmed to a readable length."""
    text = " ".join(str(err).split()) or type(err).__name__
    for pattern in (_OS_ERROR, _SERVER_ERROR):
        found = pattern.search(text)
        if found:
            text = found.group(0).strip()
            break
    if target.password:
        text = text.replace(target.password, "***")
    return text if len(text) <= 300 else text[:297] + "..."


def scalar(client: Client, query: str, parameters: dict[str, Any] | None = None) -> Any:
    """The single value a query returns."""
    return client.query(query, parameters=parameters).result_rows[0][0]

"""Writing batches into ai_usage_log, and telling a passing failure from our own bug.

Rows arrive as JSONCompactEachRow lines and are parsed by ClickHouse itself, so the
engine's work happens outside the GIL. Every insert carries a deduplication token
naming its offset ranges: a retry of the same batch is dropped by ClickHouse, and any
other repeat (a replay after a crash, a resent event) collapses on the table's key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError

from consumer.processing import ROW_COLUMNS, Row

# ClickHouse error codes worth retrying: the server is busy, short of memory, or
# restarting, not telling us our data is wrong.
RETRYABLE_CODES = frozenset(
    {
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY (replica restarting)
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        225,  # NO_ZOOKEEPER
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        285,  # TOO_FEW_LIVE_REPLICAS
        319,  # UNKNOWN_STATUS_OF_INSERT
        425,  # SYSTEM_ERROR
        999,  # KEEPER_EXCEPTION
    }
)
_CODE = re.compile(r"Code: (\d+)\.")


class WriteFailed(Exception):
    """An insert failed. ``retryable`` separates an outage from a bug of ours."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class RowWriter(Protocol):
    def write(self, rows: Sequence[Row], dedup_token: str) -> None:
        """Insert all rows or raise WriteFailed."""


class ClickHouseRowWriter:
    def __init__(self, client: Client, database: str, table: str = "ai_usage_log") -> None:
        self._client = client
        self._table = f"`{database}`.`{table}`"

    def write(self, rows: Sequence[Row], dedup_token: str) -> None:
        if not rows:
            return
        block = b"\n".join(rows)
        try:
            self._client.raw_insert(
                self._table,
                ROW_COLUMNS,
                insert_block=block,
                fmt="JSONCompactEachRow",
                settings={
                    "insert_deduplication_token": dedup_token,
                    "date_time_input_format": "best_effort",
                },
            )
        except Exception as err:
            raise WriteFailed(_summary(err), retryable=is_retryable(err)) from err


def is_retryable(err: BaseException) -> bool:
    if isinstance(err, (OperationalError, ConnectionError, TimeoutError)):
        return True
    found = _CODE.search(str(err))
    return found is not None and int(found.group(1)) in RETRYABLE_CODES


def _summary(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:400]}"

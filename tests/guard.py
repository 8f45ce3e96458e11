"""The unit-test guard: a unit test that reaches for a service fails loudly.

It closes every door our code uses to reach Kafka or ClickHouse: Python sockets
(ClickHouse over HTTP, Docker), ``clickhouse_connect.get_client`` (chDB too) and the
confluent-kafka client classes wherever our packages imported them.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import clickhouse_connect
import confluent_kafka
import confluent_kafka.admin
import pytest

OUR_PACKAGES = ("aiusage", "consumer", "aggregator", "query")
KAFKA_CLIENTS = ("Producer", "Consumer", "AdminClient", "SerializingProducer")


class ServiceTouched(AssertionError):
    """A unit test tried to reach a service; mark it integration instead."""


def _refuse(what: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ServiceTouched(f"a unit test touched {what}; mark it integration")

    return refuse


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _refuse("the network"))
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse("the network"))
    monkeypatch.setattr(clickhouse_connect, "get_client", _refuse("ClickHouse"))
    for module in (confluent_kafka, confluent_kafka.admin):
        for name in KAFKA_CLIENTS:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, _refuse(f"Kafka ({name})"))
    for module_name, module in list(sys.modules.items()):
        if module is None or module_name.split(".")[0] not in OUR_PACKAGES:
            continue
        for name in KAFKA_CLIENTS:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, _refuse(f"Kafka ({name})"))

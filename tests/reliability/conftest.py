"""Helpers for tests that run ``aiusage consume`` as a real process and kill it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from aiusage.settings import KafkaSettings

AIUSAGE = Path(sys.executable).with_name("aiusage")
REPO = Path(__file__).resolve().parents[2]


@dataclass
class ConsumerProcess:
    """``aiusage consume`` in its own process, with its own chDB directory."""

    kafka: KafkaSettings
    data_dir: Path
    database: str = "reliability"
    extra_env: dict[str, str] | None = None

    def __post_init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    @property
    def dsn(self) -> str:
        return f"chdb://{self.data_dir}"

    def env(self) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AIUSAGE_")}
        return {
            **clean,
            "AIUSAGE_KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "AIUSAGE_KAFKA_TOPIC": self.kafka.topic,
            "AIUSAGE_KAFKA_GROUP_ID": self.kafka.group_id,
            "AIUSAGE_KAFKA_PARTITIONS": str(self.kafka.partitions),
            "AIUSAGE_CLICKHOUSE_DSN": self.dsn,
            "AIUSAGE_CLICKHOUSE_DATABASE": self.database,
            "AIUSAGE_METRICS_PORT": "0",
            "AIUSAGE_CONSUMER_BATCH_MAX_ROWS": "2000",
            "AIUSAGE_CONSUMER_BATCH_MAX_WAIT_S": "0.2",
            "AIUSAGE_CONSUMER_POLL_TIMEOUT_S": "0.1",
            **(self.extra_env or {}),
        }

    def start(self, log: Path) -> subprocess.Popen[bytes]:
        handle = log.open("ab")
        process = subprocess.Popen(
            [str(AIUSAGE), "consume"], env=self.env(), cwd=REPO, stdout=handle, stderr=handle
        )
        self.started.append(process)
        return process

    def kill_leftovers(self) -> None:
        """A failed test must not leave a consumer running."""
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait(30)

    def start_and_wait(self, log: Path) -> subprocess.Popen[bytes]:
        """Start, and return once the process has joined the group (its signal handlers
        are installed by then)."""
        from tests.pipeline import wait_for

        joined = log.read_text().count(" assigned ") if log.exists() else 0
        process = self.start(log)
        wait_for(lambda: log.read_text().count(" assigned ") > joined, 60, "the group join")
        return process

    def probe(self) -> dict[str, Any]:
        """Read what the consumer stored (only while no consumer process holds the directory)."""
        done = subprocess.run(
            [sys.executable, "-m", "tests.probe", self.dsn, self.database],
            cwd=REPO,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        stored: dict[str, Any] = json.loads(done.stdout)
        for days in stored["totals"].values():
            for values in days.values():
                values["cost"] = Decimal(values["cost"])
        return stored


@pytest.fixture
def consumer_process(kafka_settings: KafkaSettings, tmp_path: Path) -> Iterator[ConsumerProcess]:
    process = ConsumerProcess(kafka_settings, tmp_path / "chdb")
    yield process
    process.kill_leftovers()


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 60) -> int:
    process.send_signal(sig)
    return process.wait(timeout_s)

"""deploy/kafka/local-kafka: idempotent start, and stop ends only its own broker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import LOCAL_KAFKA


def _script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LOCAL_KAFKA), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def local_broker_port(kafka_bootstrap: str) -> str:
    if os.environ.get("AIUSAGE_TEST_KAFKA_BOOTSTRAP"):
        pytest.skip("the broker under test is not the local script's")
    port = kafka_bootstrap.rsplit(":", 1)[1]
    if _script("status", "--port", port).returncode != 0:
        pytest.skip("the broker under test is not the local script's (Docker)")
    return port


def test_start_while_running_does_nothing(local_broker_port: str) -> None:
    status = _script("status", "--port", local_broker_port)
    again = _script("start", "--port", local_broker_port)
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout
    pid = status.stdout.split("pid ")[1].split(")")[0]
    assert f"pid {pid}" in again.stdout


def test_stop_never_kills_a_process_it_did_not_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        (state / "kafka.pid").write_text(f"{bystander.pid}\n")
        env = {"AIUSAGE_LOCAL_KAFKA_STATE_DIR": str(state)}
        status = _script("status", "--port", "19092", env=env)
        assert status.returncode == 3
        stopped = _script("stop", "--port", "19092", env=env)
        assert stopped.returncode == 0
        assert "not running" in stopped.stdout
        assert bystander.poll() is None
        assert not (state / "kafka.pid").exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_start_refuses_a_port_held_by_another_process(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = str(listener.getsockname()[1])
        env = {"AIUSAGE_LOCAL_KAFKA_STATE_DIR": str(tmp_path / "state")}
        done = _script("start", "--port", port, env=env)
    assert done.returncode == 1
    assert f"port {port} is in use by another process" in done.stderr


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["start", "--port", "abc"], {}, "port 'abc' is not a number"),
        (["start"], {"AIUSAGE_LOCAL_KAFKA_HEAP": "4g"}, "between 128m and 1g"),
        (["start"], {"AIUSAGE_LOCAL_KAFKA_HEAP": "lots"}, "must look like 512m"),
        (["explode"], {}, "unknown command 'explode'"),
        (["start", "--wat"], {}, "unknown argument '--wat'"),
    ],
)
def test_bad_arguments_are_one_line(args: list[str], env: dict[str, str], message: str) -> None:
    done = _script(*args, env=env)
    assert done.returncode != 0
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1

"""deploy/docker-compose.yml and the Dockerfile cannot run here: check them against the code."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from aiusage.cli import build_parser
from aiusage.commands.settings_cmd import SETTINGS_CLASSES

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "docker-compose.yml"
AIUSAGE_SERVICES = {"migrate", "consumer", "aggregator"}
# Subcommands named in the compose file that a later issue adds (none now). When one
# lands, the last test below fails until it is removed from this set.
PENDING_SUBCOMMANDS: set[str] = set()


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _known_variables() -> set[str]:
    names = set()
    for cls in SETTINGS_CLASSES:
        prefix = str(cls.model_config["env_prefix"])
        names |= {f"{prefix}{field.upper()}" for field in cls.model_fields}
    return names


def _registered_subcommands() -> set[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(actions[0].choices)


def test_compose_has_the_broker_the_database_and_the_services() -> None:
    services = _compose()["services"]
    assert {"kafka", "clickhouse"} | AIUSAGE_SERVICES <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")


def test_every_aiusage_variable_in_compose_is_a_real_setting() -> None:
    known = _known_variables()
    services = _compose()["services"]
    for name in AIUSAGE_SERVICES:
        env = services[name]["environment"]
        aiusage_vars = {key for key in env if key.startswith("AIUSAGE_")}
        assert aiusage_vars, name
        assert aiusage_vars <= known, (name, aiusage_vars - known)
        assert env["AIUSAGE_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["AIUSAGE_CLICKHOUSE_DSN"].startswith("http://")
        assert "@clickhouse:8123/" in env["AIUSAGE_CLICKHOUSE_DSN"]


def test_services_wait_for_the_schema_and_the_topics() -> None:
    services = _compose()["services"]
    migrate = services["migrate"]
    assert migrate["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert migrate["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    for name in AIUSAGE_SERVICES - {"migrate"}:
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully"


def test_service_commands_are_aiusage_subcommands() -> None:
    registered = _registered_subcommands()
    assert not registered & PENDING_SUBCOMMANDS, "a pending subcommand landed: update the set"
    services = _compose()["services"]
    migrate_script = services["migrate"]["command"][-1]
    for part in migrate_script.split("&&"):
        words = part.split()
        assert words[0] == "aiusage"
        assert words[1] in registered
    for name in AIUSAGE_SERVICES - {"migrate"}:
        command = services[name]["command"]
        assert command[0] == "aiusage"
        assert command[1] in registered | PENDING_SUBCOMMANDS


def test_dockerfile_installs_every_package_and_runs_unprivileged() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for package in ("aiusage", "consumer", "aggregator", "query"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert "RUN pip install ." in dockerfile
    assert "USER aiusage" in dockerfile


def test_k8s_manifests_run_real_subcommands_with_real_settings() -> None:
    known = _known_variables()
    registered = _registered_subcommands()
    documents = [
        doc
        for path in sorted((REPO / "deploy" / "k8s").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
    ]
    config = next(d for d in documents if d["kind"] == "ConfigMap")
    secret = next(d for d in documents if d["kind"] == "Secret")
    assert set(config["data"]) | set(secret["stringData"]) <= known
    workloads = [d for d in documents if d["kind"] in ("Deployment", "StatefulSet", "Job")]
    assert {d["metadata"]["name"] for d in workloads} == {
        "aiusage-consumer", "aiusage-aggregator", "aiusage-query", "aiusage-migrate",
    }  # fmt: skip
    for workload in workloads:
        for container in workload["spec"]["template"]["spec"]["containers"]:
            command = container["command"]
            words = command[-1].split() if command[0] == "sh" else command
            assert words[0] == "aiusage" and words[1] in registered, command
            for variable in container.get("env", []):
                assert variable["name"] in known, variable["name"]

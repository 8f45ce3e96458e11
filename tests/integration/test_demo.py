"""aiusage demo, small: every report it prints matches the producer's expected totals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

AIUSAGE = Path(sys.executable).with_name("aiusage")


def test_the_demo_runs_end_to_end_and_checks_itself(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIUSAGE_")}
    env["AIUSAGE_KAFKA_BOOTSTRAP_SERVERS"] = kafka_bootstrap
    args = ["demo", "--events", "20000", "--orgs", "8", "--days", "35"]
    for run in range(2):  # twice in a row
        done = subprocess.run(
            [str(AIUSAGE), *args, "--workdir", str(tmp_path / "demo")],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert done.stdout.count("matches the producer's expected totals") == 4, run
        assert "route hybrid" in done.stdout
        assert "dead letters in aiusage-demo-" in done.stdout
        assert "aiusage serve stopped (exit 0)" in done.stdout
        assert (tmp_path / "demo" / "daily-cost.png").stat().st_size > 10_000

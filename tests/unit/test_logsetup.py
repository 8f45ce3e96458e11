from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from aiusage.logsetup import configure
from aiusage.settings import LogSettings


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_structured_fields_and_mask_secrets(restore_root_logger: None) -> None:
    stream = io.StringIO()
    configure(LogSettings(format="json"), secrets=["hunter2"], stream=stream)
    logging.getLogger("aiusage.test").info(
        "connecting with %s", "password=hunter2", extra={"partition": 3}
    )
    entry = json.loads(stream.getvalue())
    assert entry["level"] == "INFO"
    assert entry["logger"] == "aiusage.test"
    assert entry["msg"] == "connecting with password=***"
    assert entry["partition"] == 3
    assert "hunter2" not in stream.getvalue()


def test_text_lines_mask_secrets_in_tracebacks_too(restore_root_logger: None) -> None:
    stream = io.StringIO()
    configure(LogSettings(format="text"), secrets=["hunter2"], stream=stream)
    try:
        raise RuntimeError("auth failed for hunter2")
    except RuntimeError:
        logging.getLogger("aiusage.test").exception("insert failed", extra={"rows": 10})
    out = stream.getvalue()
    assert "insert failed rows=10" in out
    assert "RuntimeError: auth failed for ***" in out
    assert "hunter2" not in out


def test_level_filters_and_configure_replaces_its_own_handler(restore_root_logger: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure(LogSettings(level="WARNING"), stream=first)
    configure(LogSettings(level="WARNING"), stream=second)
    logging.getLogger("aiusage.test").info("hidden")
    logging.getLogger("aiusage.test").warning("shown")
    assert first.getvalue() == ""
    assert "shown" in second.getvalue()
    assert "hidden" not in second.getvalue()

"""The README's configuration table names every setting, and only real ones."""

from __future__ import annotations

import re
from pathlib import Path

from aiusage.commands.settings_cmd import SETTINGS_CLASSES

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_and_every_documented_setting_exists() -> None:
    known = set()
    for cls in SETTINGS_CLASSES:
        prefix = str(cls.model_config["env_prefix"])
        known |= {f"{prefix}{field.upper()}" for field in cls.model_fields}
    table = re.findall(r"^\| `(AIUSAGE_[A-Z_]+)` \|", README.read_text(), flags=re.MULTILINE)
    assert set(table) == known
    assert len(table) == len(set(table))

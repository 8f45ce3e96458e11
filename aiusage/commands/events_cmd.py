"""``aiusage events schema``: the published JSON Schema of the usage event."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from aiusage.events import json_schema

SCHEMA_PATH = Path("deploy") / "schemas" / "usage-event.v1.json"


def render_schema() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "events",
        help="the usage event contract",
        description="The usage event contract shared by producers and the consumer.",
    )
    actions = parser.add_subparsers(
        title="actions", dest="action", metavar="ACTION", parser_class=type(parser)
    )
    actions.required = True
    schema = actions.add_parser(
        "schema",
        help="print the JSON Schema (version 1), or write it with --write",
        description="Print the JSON Schema generated from the event model.",
    )
    schema.add_argument("--write", type=Path, metavar="PATH", help=f"write it, e.g. {SCHEMA_PATH}")
    schema.set_defaults(func=run_schema)


def run_schema(args: argparse.Namespace) -> int:
    text = render_schema()
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(text)
        print(f"wrote {args.write}")
    else:
        print(text, end="")
    return 0

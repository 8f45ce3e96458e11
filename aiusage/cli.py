"""The ``aiusage`` command line.

Every failure ends as one line on stderr and a non-zero exit code: 2 for bad
arguments or settings, 1 for anything else. ``AIUSAGE_LOG_LEVEL=DEBUG`` adds the
traceback of an unexpected error to the log.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from aiusage import __version__
from aiusage.errors import AiusageError
from aiusage.logsetup import configure
from aiusage.settings import LogSettings, load

log = logging.getLogger("aiusage")

Command = Callable[[argparse.Namespace], int]


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are a single line, with a pointer to --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> OneLineParser:
    from aiusage.commands import (
        aggregate_cmd,
        consume_cmd,
        demo_cmd,
        dlq_cmd,
        events_cmd,
        migrate_cmd,
        produce_cmd,
        query_cmd,
        serve_cmd,
        settings_cmd,
        topics_cmd,
    )

    parser = OneLineParser(
        prog="aiusage",
        description="Meter AI/LLM usage per organization on Kafka and ClickHouse.",
    )
    parser.add_argument("--version", action="version", version=f"aiusage {__version__}")
    commands = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", parser_class=OneLineParser
    )
    commands.required = True
    modules = (
        migrate_cmd,
        topics_cmd,
        produce_cmd,
        consume_cmd,
        aggregate_cmd,
        query_cmd,
        serve_cmd,
        dlq_cmd,
        demo_cmd,
        events_cmd,
        settings_cmd,
    )
    for module in modules:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure(load(LogSettings))
        func: Command = args.func
        return func(args)
    except AiusageError as err:
        _fail(str(err))
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # the last resort: one line, the traceback only at DEBUG
        log.debug("unexpected error", exc_info=True)
        _fail(f"unexpected {type(err).__name__}: {' '.join(str(err).split())}")
        return 1


def _fail(message: str) -> None:
    lines = message.splitlines() or [""]
    if len(lines) == 1:
        print(f"aiusage: error: {lines[0]}", file=sys.stderr)
        return
    print("aiusage: error: invalid settings", file=sys.stderr)
    for line in lines:
        print(f"  {line}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

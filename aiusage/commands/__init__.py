"""Subcommands of the ``aiusage`` CLI, one module each."""

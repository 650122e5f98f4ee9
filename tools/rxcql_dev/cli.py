"""What the command lines of ``scripts/cassandra``, ``scripts/cassandra-cluster`` and
``scripts/simulacron`` share: sub-commands, the wait timeout, errors and exit statuses."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from .jvm import ToolError

__all__ = ["add_wait_timeout", "parser_with_commands", "run"]


def parser_with_commands(
    prog: str, description: str, commands: Sequence[tuple[str, str]]
) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """A parser with one sub-command per ``(name, help)``; returns it and the sub-parsers."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    subparsers = parser.add_subparsers(dest="command", required=True)
    subs = {
        name: subparsers.add_parser(name, help=text, description=text) for name, text in commands
    }
    return parser, subs


def add_wait_timeout(sub: argparse.ArgumentParser, default: float, text: str) -> None:
    """``--wait-timeout SECONDS``; ``text`` says what for (``seconds to wait for CQL``)."""
    sub.add_argument("--wait-timeout", type=float, default=default, help=f"{text} ({default:.0f})")


def run(
    parser: argparse.ArgumentParser,
    command: Callable[[argparse.Namespace], int],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse ``argv`` and run ``command``; returns the exit status: a :class:`ToolError` is
    printed as ``error: ...`` on stderr (status 1), Ctrl-C gives 130."""
    args = parser.parse_args(argv)
    try:
        return command(args)
    except ToolError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130

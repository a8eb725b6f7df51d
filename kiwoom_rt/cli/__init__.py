"""``kiwoom-rt``: the command line (``python -m kiwoom_rt`` works too).

    kiwoom-rt demo [--regular]                       live board on the built-in simulator
    kiwoom-rt watch 005930 --mock [--type 0B --type 0D] [--json]
    kiwoom-rt record out.jsonl.gz 005930 --mock
    kiwoom-rt replay out.jsonl.gz [--speed 10 | --max]
    kiwoom-rt export out.jsonl.gz trades.parquet --type 0B
    kiwoom-rt conditions --sim | kiwoom-rt search 4 --sim | kiwoom-rt watch --condition 4 --sim
    kiwoom-rt token issue --mock | kiwoom-rt token revoke --mock
    kiwoom-rt sim --port 8765

The package's rooms: ``_parser`` (arguments), ``_format`` (lines and JSON), ``_boards`` (the demo's
boards) and ``_commands`` (one function per command).

Credentials come from the environment: KIWOOM_TOKEN, or KIWOOM_APPKEY and KIWOOM_SECRETKEY.
Nothing contacts Kiwoom unless --mock, --prod or --url says so. Wrong input gives one line on
stderr and a non-zero exit code; Ctrl-C stops any command cleanly.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ..errors import KiwoomError
from ._commands import COMMANDS
from ._format import format_json, format_line
from ._parser import PROG, UsageError, build

__all__ = ["build_parser", "format_json", "format_line", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser, every command wired to the function that runs it."""
    return build(COMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    # errors reach the user as one line from here; the library's log only with -v
    logging.basicConfig(level=logging.INFO if args.verbose else logging.CRITICAL + 1,
                        format=f"{PROG}: %(levelname)s: %(message)s")
    try:
        result: int = args.func(args)
        return result
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except (KiwoomError, TimeoutError, ValueError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:
        root = (exc.name or "").split(".")[0]
        extra = "frames" if root in ("pandas", "pyarrow") else "relay" if root == "redis" else "sim"
        print(f"{PROG}: error: {exc.name or exc} is not installed (pip install 'kiwoom-rt[{extra}]')",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: stopped", file=sys.stderr)
        return 0

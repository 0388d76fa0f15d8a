"""The ``numrope`` command line: one subcommand per module, each with ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> module defining add_parser(subparsers) and run(args) -> exit code
SUBCOMMANDS = {
    "demo": "numrope.cli.demo",
    "validate": "numrope.cli.validate",
    "bench": "numrope.cli.bench",
    "verify": "numrope.cli.verify",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="numrope", description="Rotary Position Embedding reference for NumPy")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        import numrope

        print(numrope.__version__)
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    return int(importlib.import_module(SUBCOMMANDS[args.command]).run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

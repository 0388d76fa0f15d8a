"""The ``numrope`` command line: one subcommand per module, each with ``add_parser`` and ``run``.

Exit statuses common to every subcommand: 2 for a user error (one line on stderr, never a
traceback), and 141 when the reader of the output goes away before it is all written
(``numrope demo | head -1``): the status of a program killed by SIGPIPE, which a shell with
``pipefail`` reports as a failure, as it should for output that was cut short. 0 would pass off
a ``numrope validate`` mismatch (status 1) as a match.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from numrope.cli._common import one_line_errors

# subcommand -> module defining add_parser(subparsers) and run(args) -> exit code
SUBCOMMANDS = {
    "demo": "numrope.cli.demo",
    "validate": "numrope.cli.validate",
    "bench": "numrope.cli.bench",
    "verify": "numrope.cli.verify",
    "conformance": "numrope.cli.conformance",
}

#: The exit status when stdout's reader has gone: 128 + SIGPIPE, as a shell reports a program killed by it.
EXIT_BROKEN_PIPE = 141

_EPILOG = """\
exit status: 0 success, 1 a check failed (validate: mismatch), 2 user error (one line on stderr),
141 the output's reader went away (numrope demo | head -1), as for a program killed by SIGPIPE.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="numrope",
        description="Rotary Position Embedding reference for NumPy",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    one_line_errors(parser)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    return parser


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        import numrope

        print(numrope.__version__)
        return 0
    if args.command is None:
        parser.error(f"give a command: one of {', '.join(SUBCOMMANDS)}")
    return int(importlib.import_module(SUBCOMMANDS[args.command]).run(args) or 0)


def main(argv=None) -> int:
    """Run ``numrope`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # a closed pipe shows here rather than at interpreter exit, outside this handler
    except BrokenPipeError:
        # Python's recipe (the signal module's notes on SIGPIPE): point stdout at devnull, so that the
        # flush at exit does not raise a second time, and stop quietly.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (AttributeError, OSError, ValueError):  # a stdout without a file descriptor (captured)
            pass
        return EXIT_BROKEN_PIPE
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""What the ``numrope`` subcommands share: parser set-up, argument types, one-line usage errors, a progress bar.

The argument types turn a bad value into argparse's usage error (exit status 2) before anything
runs, so that no NaN, zero or negative size reaches numrope's functions or a Numba kernel.
"""

from __future__ import annotations

import argparse
import math
import sys

#: Positions numrope's cos/sin are claimed exact for: ``|m * theta| < 2**32`` with ``theta <= 1``.
MAX_POSITIONS = 2**32


def _int(text):
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def positive_int(text):
    """A whole number of at least 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text):
    """A whole number of at least 0 (a random seed)."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text}")
    return value


def head_dim(text):
    """A positive even whole number: features rotate in pairs."""
    value = positive_int(text)
    if value % 2:
        raise argparse.ArgumentTypeError(f"must be even (features rotate in pairs), got {text}")
    return value


def position_count(limit=MAX_POSITIONS, why="numrope's cos/sin are exact for positions below 2**32", minimum=1):
    """An argument type for a number of positions ``0 .. N - 1``: ``minimum <= N <= limit``."""

    def parse(text):
        value = positive_int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        if value > limit:
            raise argparse.ArgumentTypeError(f"must be at most {limit} ({why}), got {text}")
        return value

    parse.__name__ = "position count"  # argparse names the type in some messages
    return parse


def _float(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None


def positive_float(text):
    """A finite number above 0 (the frequency base)."""
    value = _float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def rope_base(text):
    """A frequency base: finite and above 1, so that the frequencies ``base**(-2i/d)`` fall with ``i``."""
    value = positive_float(text)
    if value <= 1:
        raise argparse.ArgumentTypeError(f"must be above 1 (theta_i = base**(-2i/d) must fall with i), got {text}")
    return value


def seconds(limit=60.0):
    """An argument type for a duration in seconds: finite, ``0 <= value <= limit``."""

    def parse(text):
        value = _float(text)
        if not (math.isfinite(value) and 0 <= value <= limit):
            raise argparse.ArgumentTypeError(f"must be a number of seconds from 0 to {limit:g}, got {text}")
        return value

    parse.__name__ = "seconds"
    return parse


def command_parser(sub, module: str, help: str, epilog: str) -> argparse.ArgumentParser:
    """The sub-parser of the ``numrope`` command that ``module`` (its ``__name__``) defines.

    The command is named after the module's last part; its description is the first line of the
    module's docstring (``numrope NAME: what it does``), ``help`` its line in ``numrope --help``,
    ``epilog`` (the exit statuses) is shown as written, and a usage error is one line
    (:func:`one_line_errors`).
    """
    doc = sys.modules[module].__doc__
    parser = sub.add_parser(
        module.rpartition(".")[2],
        help=help,
        description=doc.split("\n")[0].replace("``", ""),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return one_line_errors(parser)


def one_line_errors(parser):
    """Make ``parser`` report a usage error as one line on stderr (exit status 2), without the usage text.

    ``numrope COMMAND --help`` still shows the usage; the line says so.
    """

    def error(message):
        parser.exit(2, f"{parser.prog}: error: {message} (see {parser.prog} --help)\n")

    parser.error = error
    return parser


def fmt_ratio(ratio, faster="faster", slower="slower"):
    """``"3.2x faster"`` for a ratio of times above 1, ``"1.5x slower"`` below it (never "0.7x faster")."""
    if ratio >= 1:
        return f"{ratio:.1f}x {faster}"
    return f"{1 / ratio:.1f}x {slower}"


class Progress:
    """A one-line progress bar on a stream (stderr), redrawn in place."""

    def __init__(self, total, stream=None, enabled=True, width=24):
        self.total, self.done, self.width, self.enabled = total, 0, width, enabled
        self.stream = stream if stream is not None else sys.stderr

    def step(self, label):
        if self.enabled:
            filled = self.width * self.done // self.total
            bar = "#" * filled + "." * (self.width - filled)
            self.stream.write(f"\r[{bar}] {self.done + 1}/{self.total} {label[:50]:<50}")
            self.stream.flush()
        self.done += 1

    def close(self):
        if self.enabled:
            self.stream.write("\r" + " " * (self.width + 64) + "\r")
            self.stream.flush()


def progress_option(parser):
    """``--progress/--no-progress``: a progress bar on stderr, by default when stderr is a terminal."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar on stderr (default: when stderr is a terminal)",
    )


def wants_progress(args) -> bool:
    return sys.stderr.isatty() if args.progress is None else args.progress

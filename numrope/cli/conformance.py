"""``numrope conformance``: run other frameworks' own RoPE code on the RoPE of real models and judge it.

Every installed framework with an adapter (Hugging Face transformers, mlx-lm, MLX, torchtune,
rotary-embedding-torch, x-transformers, keras-hub on JAX, gemma, penzai, ggml) rotates seeded random
queries and keys at positions spread over each catalogue model's whole context, in float32,
bfloat16 and float16 where it computes in them; each output is judged against numrope's float64
result with numrope's tolerance (float32 angles allowed).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

from numrope.cli._common import Progress, command_parser, non_negative_int, progress_option, wants_progress

_EPILOG = """\
exit status: 0 when every row measured conforms (with --baseline: every row that conformed in the
baseline), 1 when one does not, 2 for a usage error (an unknown framework, model or precision, a
framework asked for by name that is not installed, an unreadable baseline, or --plot without
matplotlib).
examples:
  numrope conformance --quick
  numrope conformance --framework transformers --framework mlx_lm --model llama --json
"""


def add_parser(sub):
    from numrope.conformance.adapters import DTYPES

    p = command_parser(
        sub, __name__, "run other frameworks' own RoPE on the RoPE of real models and judge it against numrope", _EPILOG
    )
    p.add_argument(
        "--framework",
        action="append",
        metavar="NAME",
        help="run only this framework (repeatable): transformers, mlx_lm, mlx, torchtune, rotary_embedding_torch, "
        "x_transformers, keras_hub, gemma, penzai, ggml",
    )
    p.add_argument(
        "--model",
        action="append",
        metavar="PATTERN",
        help="run only the models whose name or Hugging Face repository contains PATTERN (repeatable)",
    )
    p.add_argument("--dtype", action="append", choices=DTYPES, help="run only this precision (repeatable)")
    p.add_argument("--quick", action="store_true", help="fewer models, precisions and positions (under a minute)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the random queries and keys (default 0)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    p.add_argument("--plot", metavar="FILE", help="also draw the error against position to an image (matplotlib)")
    p.add_argument(
        "--baseline",
        metavar="REPORT_JSON",
        help="a stored --json report: rows that fail there are expected to fail (documented deviations); "
        "exit 1 only for a row that fails here and not there",
    )
    p.add_argument("--list", action="store_true", help="list the frameworks and models and exit")
    progress_option(p)
    return p


def _fail(message) -> int:
    print(f"numrope conformance: {message}", file=sys.stderr)
    return 2


@contextlib.contextmanager
def _stdout_to_stderr():
    """What the frameworks print while they run (Python's print or C's printf) goes to stderr, so stdout
    holds the report alone (``--json`` stays parseable)."""
    sys.stdout.flush()
    fd = 1  # the process's stdout, whatever sys.stdout is (C code writes here)
    try:
        saved = os.dup(fd)
        os.dup2(2, fd)
    except OSError:  # no such descriptors (an embedding without them)
        saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved is not None:
            sys.stdout.flush()
            os.dup2(saved, fd)
            os.close(saved)


def _listing(chosen) -> str:
    lines = ["frameworks:"]
    for a in chosen.adapters:
        why = a.missing()
        state = f"{a.version()}" if why is None else f"not installed ({why})"
        lines.append(f"  {a.name:<24} {a.level:<10} {state}")
    lines.append("models:")
    lines += [f"  {m.name:<34} {m.hf_repo}" for m in chosen.models]
    return "\n".join(lines)


def run(args) -> int:
    from numrope import conformance
    from numrope.conformance.report import failures, format_report, plot, to_json

    if args.plot:
        # checked before anything runs: the plot is the last step
        try:
            import matplotlib.figure  # noqa: F401
        except ImportError:
            return _fail('--plot needs matplotlib: install it with `pip install "numrope[bench]"`')
    try:
        chosen = conformance.plan(args.framework, args.model, args.dtype, quick=args.quick)
    except ValueError as exc:
        return _fail(str(exc))
    if args.list:
        print(_listing(chosen))
        return 0
    expected = None
    if args.baseline:
        try:
            expected = _baseline(args.baseline)
        except ValueError as exc:
            return _fail(str(exc))
    if args.framework:
        missing = [(a.name, a.missing()) for a in chosen.adapters if a.missing() is not None]
        if missing:
            return _fail(f"{missing[0][0]} cannot run: {missing[0][1]}")
    total = len(chosen.models) * len(chosen.installed)
    bar = Progress(max(total, 1), enabled=wants_progress(args) and total > 0)
    try:
        with _stdout_to_stderr():
            report = conformance.run(
                args.framework, args.model, args.dtype, quick=args.quick, seed=args.seed, progress=bar.step
            )
    finally:
        bar.close()
    bad = failures(report)
    if expected is not None:
        bad = [r for r in bad if (r["framework"], r["model"], r["dtype"]) not in expected]
        report["baseline"] = {
            "file": args.baseline,
            "expected_failures": len(failures(report)) - len(bad),
            "new_failures": [f"{r['framework']} / {r['model']} / {r['dtype']}" for r in bad],
        }
    print(to_json(report) if args.json else format_report(report))
    if expected is not None:
        b = report["baseline"]
        print(
            f"baseline {args.baseline}: {b['expected_failures']} failing rows fail there too, "
            f"{len(b['new_failures'])} new: {', '.join(b['new_failures']) or 'none'}",
            file=sys.stderr,
        )
    if args.plot:
        plot(report, args.plot)
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 1 if bad else 0


def _baseline(path):
    """The (framework, model, dtype) rows that fail in a stored report; raises ValueError (one line)."""
    try:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
        return {(r["framework"], r["model"], r["dtype"]) for r in report["results"] if not r["ok"]}
    except OSError as exc:
        raise ValueError(f"--baseline {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"--baseline {path}: not JSON ({exc})") from None
    except (KeyError, TypeError) as exc:
        raise ValueError(f"--baseline {path}: not a numrope conformance report (no {exc})") from None

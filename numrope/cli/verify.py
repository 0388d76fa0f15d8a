"""``numrope verify``: prove numerically that RoPE is relative and that numrope computes it accurately.

Runs the checks of :mod:`numrope.checks.identity` (relative-position identity, matrix form, group
property, orthogonality, long-term decay) and :mod:`numrope.checks.precision` (cos/sin against mpmath)
on one configuration or on every layout, partial rotary and scaling variant, and shows that the
identity check rejects the additive sinusoidal encoding. Exit code 0 only if everything holds, 1 if
a check fails, 2 if the checks cannot run as asked (a bad argument, an unreadable config, mpmath
not installed).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np

from numrope.checks.report import Comparison
from numrope.cli._common import (
    Progress,
    command_parser,
    head_dim,
    non_negative_int,
    position_count,
    progress_option,
    rope_base,
    wants_progress,
)

_EPILOG = """\
exit status: 0 when every comparison holds, 1 when one fails, 2 when the checks cannot run as asked
(a bad argument, an unreadable --config, mpmath missing for the precision checks).
"""

#: Below this head size the scaled variants' long-term decay trend does not show (the check fails).
MIN_HEAD_DIM = 16


def _standard_head_dim(text):
    value = head_dim(text)
    if value < MIN_HEAD_DIM:
        raise argparse.ArgumentTypeError(
            f"must be at least {MIN_HEAD_DIM} (with fewer pairs the long-term decay of the scaled "
            f"configurations does not show), got {text}"
        )
    return value


# Which row of the summary each comparison belongs to, by the function that made it.
_CATEGORIES = {
    "check_relative": ("identity",) * 3,
    "check_rotation": ("matrix form", "orthogonality", "orthogonality", "group property", "matrix form"),
    "check_decay": ("decay",) * 3,
    "check_precision": ("precision",) * 4,
}


class _UsageError(Exception):
    """The checks cannot run as asked (unreadable config, mpmath missing): exit code 2."""


@dataclasses.dataclass
class _Row:
    category: str
    comparison: Comparison
    where: str
    expect_failure: bool = False

    @property
    def ratio(self) -> float:
        c = self.comparison
        if c.rel_bound > 0:
            return c.max_rel_error / c.rel_bound
        return 0.0 if c.max_rel_error == 0 else np.inf

    @property
    def holds(self) -> bool:
        return self.comparison.passed != self.expect_failure


def add_parser(sub):
    p = command_parser(
        sub,
        __name__,
        "check the relative-position identity, the rotation matrices, the decay and cos/sin accuracy",
        _EPILOG,
    )
    p.add_argument(
        "--config",
        metavar="PATH",
        help="a Hugging Face config.json (or model directory) to check instead of the standard configurations",
    )
    p.add_argument("--layer-type", help="with --config: the layer type, for models that rotate layers differently")
    p.add_argument(
        "--head-dim",
        type=_standard_head_dim,
        default=128,
        help=f"head size of the standard configurations, even, at least {MIN_HEAD_DIM} (default 128)",
    )
    p.add_argument(
        "--base", type=rope_base, default=10000.0, help="frequency base of the standard configurations (default 10000)"
    )
    p.add_argument(
        "--seq-len",
        type=position_count(),
        default=None,
        help="fixed sequence length for the variants that depend on it (default: 8192, or the config's "
        "max_position_embeddings)",
    )
    p.add_argument(
        "--max-position",
        type=position_count(minimum=2),  # one position has no relative distance to check
        default=8192,
        help="positions 0 .. N-1 are drawn for the identity, N from 2 to 2**32 (default 8192)",
    )
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--encoding",
        choices=("rope", "absolute"),
        default="rope",
        help="'absolute' checks the additive sinusoidal encoding instead of RoPE, to watch the identity fail",
    )
    p.add_argument("--no-precision", action="store_true", help="skip the cos/sin precision checks (need mpmath)")
    p.add_argument("--verbose", "-v", action="store_true", help="print every configuration's full report")
    progress_option(p)
    return p


def _label(cfg, seq_len) -> str:
    label = cfg.layout
    if cfg.rotary_dim != cfg.head_dim:
        label += f" rotary_dim={cfg.rotary_dim}"
    if cfg.scaling is not None:
        label = f"{cfg.scaling.rope_type or type(cfg.scaling).__name__}"
        if cfg.depends_on_seq_len:
            label += f" @{seq_len}"
    return label


def _configs(args):
    from numrope.checks.configs import standard_configs

    if args.config is None:
        return standard_configs(args.head_dim, args.base, args.seq_len or 8192)
    import numrope

    try:
        cfg = numrope.RopeConfig.from_hf(args.config, layer_type=args.layer_type)
    except (OSError, ValueError, TypeError, NotImplementedError) as exc:
        raise _UsageError(f"cannot use --config {args.config}: {exc}") from None
    if cfg is None or cfg.layout == "interleaved_in_half_out":
        why = "the layer asked for has no RoPE" if cfg is None else "its layout, interleaved_in_half_out, moves pairs"
        raise _UsageError(f"cannot use --config {args.config}: {why} (numrope verify checks rotations in place)")
    seq_len = args.seq_len
    if seq_len is None and cfg.depends_on_seq_len:
        seq_len = getattr(cfg.scaling, "max_position_embeddings", None) or 8192
    return [(cfg, seq_len)]


def _rows(name, report, where, expect_failure=False):
    categories = _CATEGORIES[name]
    return [
        _Row(categories[i] if i < len(categories) else name, c, where, expect_failure)
        for i, c in enumerate(report.comparisons)
    ]


def collect(args, out=print, progress=False) -> tuple[list, int]:
    """Run every check for the parsed arguments; return the rows and the number of configurations.

    ``progress`` draws a bar on stderr, one step per configuration (and one for the counter-example).
    """
    configs = _configs(args)
    rope = args.encoding == "rope"
    bar = Progress(len(configs) + rope, enabled=progress)
    try:
        rows = [row for cfg, seq_len in configs for row in _check_config(args, cfg, seq_len, rope, out, bar)]
        if rope:
            rows += _counter_example(args, *configs[0], out, bar)
    finally:
        bar.close()
    return rows, len(configs)


def _check_config(args, cfg, seq_len, rope, out, bar):
    from numrope.checks import decay, identity, precision

    if cfg.n_axes > 1:  # positions are coordinate vectors: the same checks, per axis
        from numrope.checks import multiaxis as identity
    where = _label(cfg, seq_len)
    bar.step(where)
    reports = []
    for dtype in (np.float64, np.float32):
        rep = identity.check_relative(
            cfg,
            dtype=dtype,
            max_position=args.max_position,
            seq_len=seq_len,
            seed=args.seed,
            encoding=None if rope else identity.sinusoidal_absolute,
        )
        reports.append(("check_relative", rep, f"{where} {np.dtype(dtype).name}"))
    if rope:
        positions = (0, 1, 7, 100, args.max_position - 1)
        reports.append(("check_rotation", identity.check_rotation(cfg, positions, seq_len=seq_len), where))
        reports.append(("check_decay", decay.check_decay(cfg, seq_len=seq_len, seed=args.seed), where))
        if not args.no_precision:
            try:
                rep = precision.check_precision(cfg, seq_len=seq_len, n_random=32, seed=args.seed)
            except ImportError as exc:
                raise _UsageError(f"{exc}\n(or pass --no-precision to skip the precision checks)") from None
            reports.append(("check_precision", rep, where))
    rows = []
    for name, rep, label in reports:
        rows += _rows(name, rep, label)
        if args.verbose:
            out(str(rep) + "\n")
    return rows


def _counter_example(args, cfg, seq_len, out, bar):
    """The additive sinusoidal encoding run through the identity check: it must be rejected."""
    from numrope.checks import identity

    bar.step("counter-example: sinusoidal absolute encoding")
    rep = identity.check_relative(
        cfg, max_position=args.max_position, seq_len=seq_len, seed=args.seed, encoding=identity.sinusoidal_absolute
    )
    if args.verbose:
        out(str(rep) + "\n")
    return [_Row("counter-example", c, "sinusoidal absolute (must FAIL)", expect_failure=True) for c in rep.comparisons]


def _summary(rows):
    """The worst row (largest error / bound) of each (category, comparison)."""
    worst = {}
    for row in rows:
        key = (row.category, row.comparison.name)
        if row.expect_failure:
            worst[key] = row  # one row each; shown as it is
        elif key not in worst or not row.holds or (worst[key].holds and row.ratio > worst[key].ratio):
            worst[key] = row
    return list(worst.values())


def run(args) -> int:
    t0 = time.perf_counter()
    try:
        rows, n_configs = collect(args, progress=wants_progress(args))
    except _UsageError as exc:
        print(f"numrope verify: error: {exc}", file=sys.stderr)
        return 2
    summary = _summary(rows)
    print(
        f"numrope verify: {n_configs} configuration(s), {len(rows)} comparisons (one per check, configuration "
        "and dtype); each error is held to a bound from the floating-point error analysis (documentation: "
        f"Accuracy).\nShown: {len(summary)} rows, the worst case of each kind of comparison over the "
        "configurations and dtypes (--verbose for every report).\n"
    )
    headers = ("check", "comparison", "error", "bound", "unit", "worst at", "result")
    table = []
    for r in summary:
        c = r.comparison
        result = ("rejected, as it must be" if r.holds else "NOT REJECTED") if r.expect_failure else None
        result = result or ("holds" if r.holds else "FAILS")
        table.append((r.category, c.name, f"{c.max_rel_error:.2e}", f"{c.rel_bound:.2e}", c.scale, r.where, result))
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for t in table:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)).rstrip())
    failed = [r for r in rows if not r.holds]
    elapsed = time.perf_counter() - t0
    if failed:
        print(f"\n{len(failed)} of {len(rows)} comparisons FAIL ({elapsed:.1f} s)")
        return 1
    print(f"\nall {len(rows)} comparisons hold ({elapsed:.1f} s)")
    return 0

"""``numrope demo``: rotate a Llama-sized batch, check it against the references, time it."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import numrope
from numrope import reference
from numrope.cli._common import command_parser, fmt_ratio, head_dim, non_negative_int, position_count, rope_base
from numrope.reference import vectorised_numpy

_EPILOG = """\
exit status: 0 when every comparison is within its bound, 1 when one is not, 2 for a bad argument
or an unusable --config.
"""

EPS32, EPS64 = float(np.finfo(np.float32).eps), float(np.finfo(np.float64).eps)

#: The demo's cos/sin table has one row per position; this many keeps it small (float32, 64 pairs: 512 MiB).
MAX_TABLE = 2**20
MAX_HEAD_DIM = 1024  # the batch has 2 x 2048 tokens x 32 heads of this size


def add_parser(sub):
    p = command_parser(sub, __name__, "apply RoPE to a random batch, check it and time it", _EPILOG)
    p.add_argument(
        "--head-dim", type=_demo_head_dim, default=None, help=f"head size, even, at most {MAX_HEAD_DIM} (default 128)"
    )
    p.add_argument("--base", type=rope_base, default=None, help="frequency base, above 1 (default 10000)")
    p.add_argument(
        "--config",
        metavar="PATH",
        help="a Hugging Face config.json (or model directory) or a llama.cpp .gguf file: use that model's RoPE "
        "(head size, base, rotary part, layout, scaling) instead of --head-dim and --base",
    )
    p.add_argument(
        "--layer-type",
        metavar="NAME",
        help="with --config, for models whose layer types rotate differently (Gemma 3: "
        "full_attention or sliding_attention)",
    )
    p.add_argument(
        "--max-position",
        type=position_count(MAX_TABLE, "the demo builds a cos/sin table with a row per position", minimum=2),
        default=8192,
        metavar="N",
        help="positions 0 .. N-1: the cos/sin table has N rows and the batch's second sequence ends at "
        f"position N-1; N from 2 to {MAX_TABLE} (default 8192)",
    )
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    return p


def _demo_head_dim(text):
    value = head_dim(text)
    if value > MAX_HEAD_DIM:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_HEAD_DIM}, got {text}")
    return value


def _best_time(fn, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def relative_spread(cfg, rng, n_pairs=64, distance=37, n_max=None, seq_len=None):
    """Max spread of <f(q, m), f(k, m - D)> over many m for fixed q, k, D (0 if RoPE is relative).

    ``seq_len`` fixes the frequencies of the variants that depend on it (see ``apply_rope``).
    Returns the spread and the scale it is measured against, ``s**2 |q| |k|`` with ``s`` the
    attention scaling (the largest a score can be).
    """
    n_max = n_max or 4096
    q = rng.standard_normal(cfg.head_dim)
    k = rng.standard_normal(cfg.head_dim)
    m = rng.integers(distance, n_max, n_pairs)
    shape = (n_pairs, 1, 1, cfg.head_dim)  # each (m, m - D) pair is its own batch row
    qm = numrope.apply_rope(np.broadcast_to(q, shape), cfg, m[:, None], seq_len=seq_len)
    kn = numrope.apply_rope(np.broadcast_to(k, shape), cfg, (m - distance)[:, None], seq_len=seq_len)
    scores = np.einsum("nshd,nshd->n", qm, kn)
    return float(np.ptp(scores)), cfg.attention_scaling**2 * float(np.linalg.norm(q) * np.linalg.norm(k))


def config_from_args(args):
    """The RopeConfig the demo runs: from ``--config`` (a config.json), else ``--head-dim``/``--base``.

    Raises ValueError (the message names the option) for conflicting or unusable options; errors
    reading the config.json come from :meth:`numrope.RopeConfig.from_hf`.
    """
    if args.config is None:
        if args.layer_type is not None:
            raise ValueError("--layer-type needs --config")
        head_dim = 128 if args.head_dim is None else args.head_dim
        base = 10000.0 if args.base is None else args.base
        return numrope.RopeConfig(head_dim=head_dim, base=base)
    given = [name for name, value in (("--head-dim", args.head_dim), ("--base", args.base)) if value is not None]
    if given:
        raise ValueError(f"{' and '.join(given)} cannot be combined with --config, which sets them from the model")
    load = numrope.RopeConfig.from_gguf if str(args.config).endswith(".gguf") else numrope.RopeConfig.from_hf
    cfg = load(args.config, layer_type=args.layer_type)
    if cfg.axes is not None:  # its checks and baselines take one position per token
        raise ValueError(
            f"--config {args.config} describes multi-axis RoPE (axes {', '.join(cfg.axes.names)}), which the demo "
            "does not run; numrope verify --config and numrope validate take it"
        )
    return cfg


def describe(cfg, seq_len) -> str:
    """One line naming the configuration, its scaling variant and the sequence length used."""
    text = f"head_dim={cfg.head_dim}, base={cfg.base:g}, layout={cfg.layout}, rotary_dim={cfg.rotary_dim}"
    if cfg.scaling is not None:
        text += f", scaling={cfg.scaling.rope_type}, attention_scaling={cfg.attention_scaling:.6g}"
    if seq_len is not None:
        text += f", seq_len={seq_len}"
    return text


def _max_angle(cfg, positions, seq_len):
    return float(np.max(positions)) * float(cfg.inv_freq(seq_len).max())


def _checks(cfg, x, y, positions, seq_len, rng, max_position):
    """The demo's comparisons: (name, error, bound, what the error is), each bound derived below."""
    rows = []
    s = cfg.attention_scaling
    # float32 with a float32 table, against the float64 complex form: the table's cos and sin are
    # rounded once (eps32/2 each), the attention scaling s, two products and a sum add a rounding
    # each; the reference's float64 angle is off by |m theta| eps64/2 and libm's cos/sin by an ulp.
    # Per element: at most s (4 eps32 + (|m theta| + 2) eps64) (|x0| + |x1|). A rotation scales a
    # pair's norm by s, so s (|x0| + |x1|) <= s sqrt(2) |pair| <= 2 max|exact|. A safety factor 2.
    exact = reference.complex_form(x, cfg, positions, seq_len=seq_len)
    err = float(np.abs(y - exact).max() / np.abs(exact).max())
    bound = 4 * (4 * EPS32 + (_max_angle(cfg, positions, seq_len) + 2) * EPS64)
    rows.append(("float32 apply vs complex-number reference", err, bound, "relative to max|exact|"))
    # float64: numrope's cos/sin are within an ulp of exact, the references' angles are rounded
    # products (|m theta| eps64 / 2) with libm's cos/sin (an ulp): per element at most
    # (|m theta| + 6) eps64 s (|x0| + |x1|), with a safety factor 2.
    x64 = x[:, :256].astype(np.float64)
    y64 = numrope.apply_rope(x64, cfg, positions[:, :256], seq_len=seq_len)
    forms = (("rotate-half", reference.rotate_half_form, 256), ("block-diagonal matrix", reference.matrix_form, 16))
    for name, form, n in forms:
        ref = form(x64[:, :n], cfg, positions[:, :n], seq_len=seq_len)
        err = float(np.abs(y64[:, :n] - ref).max())
        bound = 4 * s * float(np.abs(x64[:, :n]).max()) * (_max_angle(cfg, positions[:, :n], seq_len) + 6) * EPS64
        rows.append((f"float64 apply vs {name} reference", err, bound, "absolute"))
    # <f(q, m), f(k, m - D)> in float64: numrope's rotated vectors are within 3 eps64 (|x0| + |x1|)
    # of exact at any m, which moves a score by at most 4 * 3 eps64 s^2 |q| |k|, and the d-term
    # dot product adds d eps64 s^2 |q| |k|; the spread is at most twice that, with a safety factor 2.
    distance = min(37, max_position - 1)  # m is drawn from [distance, max_position)
    spread, scale = relative_spread(cfg, rng, distance=distance, n_max=max_position, seq_len=seq_len)
    bound = 4 * (12 + cfg.head_dim) * EPS64
    rows.append((f"<f(q,m), f(k,m-{distance})> spread over 64 m", spread / scale, bound, "relative to s^2 |q| |k|"))
    return rows


def run(args) -> int:
    try:
        cfg = config_from_args(args)
    except (ValueError, TypeError, OSError, NotImplementedError, ImportError) as exc:
        print(f"numrope demo: {exc}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    n_pos = args.max_position
    # Dynamic NTK and LongRoPE depend on the sequence length: fix it to the table's length, so that
    # every call below (and the relative-position check) uses the same frequencies.
    seq_len = n_pos if cfg.depends_on_seq_len else None
    batch, seq, heads = 2, min(2048, n_pos // 2), 32
    source = f" ({args.config}" + (f", {args.layer_type}" if args.layer_type else "") + ")" if args.config else ""
    print(f"numrope {numrope.__version__} demo{source}: {describe(cfg, seq_len)}")

    t0 = time.perf_counter()
    cos, sin = numrope.rope_cache(cfg, n_pos, seq_len=seq_len)
    t_cache = time.perf_counter() - t0
    print(
        f"cache: {n_pos} positions x {cfg.n_pairs} pairs (float32) built in {t_cache * 1e3:.1f} ms "
        "(first call includes JIT compilation or loading it from disk)"
    )

    x = rng.standard_normal((batch, seq, heads, cfg.head_dim)).astype(np.float32)
    positions = np.stack([np.arange(seq), n_pos - seq + np.arange(seq)])  # second sequence at the table's end
    y = numrope.apply_rope(x, cfg, positions, cache=(cos, sin))

    rows = _checks(cfg, x, y, positions, seq_len, rng, n_pos)
    table = [(name, f"{e:.2e}", f"{b:.2e}", note, "ok" if e <= b else "FAILS") for name, e, b, note in rows]
    headers = ("check", "error", "bound", "error is", "result")
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(headers)]
    print()
    for line in (headers, *table):
        cells = [v.ljust(w) if i in (0, 3) else v.rjust(w) for i, (v, w) in enumerate(zip(line, widths, strict=True))]
        print("  ".join(cells).rstrip())

    t_numrope = _best_time(lambda: numrope.apply_rope(x, cfg, positions[:1], seq_len=seq_len))
    t_table = _best_time(lambda: numrope.apply_rope(x, cfg, positions, cache=(cos, sin), out=y))
    t_seed = _best_time(lambda: vectorised_numpy(x, cfg), repeat=3)
    gb = 2 * x.nbytes / 1e9
    print(f"\nspeed on x of shape {x.shape} float32 ({x.nbytes / 2**20:.0f} MiB), best of several runs:")
    print(f"  vectorised NumPy x*cos + rotate_half(x)*sin   {t_seed * 1e3:8.2f} ms")
    print(f"  numrope apply_rope(x, cfg)                    {t_numrope * 1e3:8.2f} ms  {fmt_ratio(t_seed / t_numrope)}")
    print(
        f"  numrope with cache table and out=             {t_table * 1e3:8.2f} ms  "
        f"{fmt_ratio(t_seed / t_table)}, {gb / t_table:.1f} GB/s"
    )
    failed = [name for name, err, bound, _ in rows if not err <= bound]
    if failed:
        print(f"\n{len(failed)} of {len(rows)} checks FAILED: {', '.join(failed)}")
        return 1
    print(f"\nall {len(rows)} checks passed")
    return 0

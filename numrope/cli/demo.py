"""``numrope demo``: rotate a Llama-sized batch, check it against the references, time it."""

from __future__ import annotations

import time

import numpy as np

import numrope
from numrope import reference
from numrope.reference import vectorised_numpy


def add_parser(sub):
    p = sub.add_parser(
        "demo", help="apply RoPE to a random batch, check it and time it", description=__doc__.split("\n")[0].strip("`")
    )
    p.add_argument("--head-dim", type=int, default=None, help="head size (default 128)")
    p.add_argument("--base", type=float, default=None, help="frequency base (default 10000)")
    p.add_argument(
        "--config",
        metavar="PATH",
        help="a Hugging Face config.json (or model directory): use that model's RoPE "
        "(head size, base, rotary part, layout, scaling) instead of --head-dim and --base",
    )
    p.add_argument(
        "--layer-type",
        metavar="NAME",
        help="with --config, for models whose layer types rotate differently (Gemma 3: "
        "full_attention or sliding_attention)",
    )
    p.add_argument("--positions", type=int, default=8192, help="cache table length (default 8192)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    return p


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
    """
    n_max = n_max or 4096
    q = rng.standard_normal(cfg.head_dim)
    k = rng.standard_normal(cfg.head_dim)
    m = rng.integers(distance, n_max, n_pairs)
    shape = (n_pairs, 1, 1, cfg.head_dim)  # each (m, m - D) pair is its own batch row
    qm = numrope.apply_rope(np.broadcast_to(q, shape), cfg, m[:, None], seq_len=seq_len)
    kn = numrope.apply_rope(np.broadcast_to(k, shape), cfg, (m - distance)[:, None], seq_len=seq_len)
    scores = np.einsum("nshd,nshd->n", qm, kn)
    return float(np.ptp(scores)), float(np.abs(scores).max())


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
    return numrope.RopeConfig.from_hf(args.config, layer_type=args.layer_type)


def describe(cfg, seq_len) -> str:
    """One line naming the configuration, its scaling variant and the sequence length used."""
    text = f"head_dim={cfg.head_dim}, base={cfg.base:g}, layout={cfg.layout}, rotary_dim={cfg.rotary_dim}"
    if cfg.scaling is not None:
        text += f", scaling={cfg.scaling.rope_type}, attention_scaling={cfg.attention_scaling:.6g}"
    if seq_len is not None:
        text += f", seq_len={seq_len}"
    return text


def run(args) -> int:
    try:
        cfg = config_from_args(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"numrope demo: {exc}")
        return 2
    rng = np.random.default_rng(args.seed)
    if args.positions < 2:
        print("numrope demo: --positions must be at least 2")
        return 2
    # Dynamic NTK and LongRoPE depend on the sequence length: fix it to the table's length, so that
    # every call below (and the relative-position check) uses the same frequencies.
    seq_len = args.positions if cfg.depends_on_seq_len else None
    batch, seq, heads = 2, min(2048, args.positions // 2), 32
    source = f" ({args.config}" + (f", {args.layer_type}" if args.layer_type else "") + ")" if args.config else ""
    print(f"numrope {numrope.__version__} demo{source}: {describe(cfg, seq_len)}")

    t0 = time.perf_counter()
    cos, sin = numrope.rope_cache(cfg, args.positions, seq_len=seq_len)
    t_cache = time.perf_counter() - t0
    print(
        f"cache: {args.positions} positions x {cfg.n_pairs} pairs (float32) built in {t_cache * 1e3:.1f} ms "
        "(first call includes JIT compilation or loading it from disk)"
    )

    x = rng.standard_normal((batch, seq, heads, cfg.head_dim)).astype(np.float32)
    last = args.positions - seq
    positions = np.stack([np.arange(seq), last + np.arange(seq)])  # second sequence at the table's end
    y = numrope.apply_rope(x, cfg, positions, cache=(cos, sin))

    rows = []
    exact = reference.complex_form(x, cfg, positions, seq_len=seq_len)
    err = np.abs(y - exact).max() / np.abs(exact).max()
    rows.append(("float32 apply vs complex-number reference", f"{err:.2e}", "relative, float32 eps 1.19e-07"))
    x64 = x[:, :256].astype(np.float64)
    y64 = numrope.apply_rope(x64, cfg, positions[:, :256], seq_len=seq_len)
    for name, form in (("rotate-half", reference.rotate_half_form), ("block-diagonal matrix", reference.matrix_form)):
        sub = (x64[:, :16], positions[:, :16]) if form is reference.matrix_form else (x64, positions[:, :256])
        ref = form(sub[0], cfg, sub[1], seq_len=seq_len)
        got = y64[:, :16] if form is reference.matrix_form else y64
        rows.append((f"float64 apply vs {name} reference", f"{np.abs(got - ref).max():.2e}", "absolute"))
    distance = min(37, args.positions - 1)  # m is drawn from [distance, positions)
    spread, scale = relative_spread(cfg, rng, distance=distance, n_max=args.positions, seq_len=seq_len)
    rows.append(
        (f"<f(q,m), f(k,m-{distance})> spread over 64 m", f"{spread / scale:.2e}", "relative: depends only on m-n")
    )

    width = max(len(r[0]) for r in rows)
    print(f"\n{'check':<{width}}  {'error':>9}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>9}  {note}")

    t_numrope = _best_time(lambda: numrope.apply_rope(x, cfg, positions[:1], seq_len=seq_len))
    t_table = _best_time(lambda: numrope.apply_rope(x, cfg, positions, cache=(cos, sin), out=y))
    t_seed = _best_time(lambda: vectorised_numpy(x, cfg), repeat=3)
    gb = 2 * x.nbytes / 1e9
    print(f"\nspeed on x of shape {x.shape} float32 ({x.nbytes / 2**20:.0f} MiB), best of several runs:")
    print(f"  vectorised NumPy x*cos + rotate_half(x)*sin   {t_seed * 1e3:8.2f} ms")
    print(
        f"  numrope apply_rope(x, cfg)                    {t_numrope * 1e3:8.2f} ms  {t_seed / t_numrope:5.1f}x faster"
    )
    print(
        f"  numrope with cache table and out=             {t_table * 1e3:8.2f} ms  "
        f"{t_seed / t_table:5.1f}x faster, {gb / t_table:.1f} GB/s"
    )
    ok = err < 8 * np.finfo(np.float32).eps and spread / scale < 1e-12
    print("\nall checks passed" if ok else "\nCHECK FAILED")
    return 0 if ok else 1

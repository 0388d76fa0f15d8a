"""``numrope validate``: check a saved RoPE output against numrope and name the likely mistake.

Exit status 0 when the output matches, 1 when it does not, 2 for a user error: a missing,
unreadable or empty array file, arrays whose shapes disagree, a configuration that cannot be
read or evaluated (one line on stderr, or one JSON object with ``--json``), never a traceback.
"""

from __future__ import annotations

import json
import math
import os
import sys
import zipfile

import numpy as np

from numrope.cli._common import command_parser

_EPILOG = """arrays: .npy files, or .npz archives: PATH.npz:NAME picks an array; a bare PATH.npz picks the
array named after the option (x, actual, positions, k, actual_k) or the archive's only array.
queries and keys: --x and --actual are the queries, --k and --actual-k the keys; the report
then also says whether q and k were swapped.
cache tables: --cache FILE --cache-kind vllm|hf|freqs_cis checks a framework's cos/sin table on its
own (vLLM's cos_sin_cache .npy; transformers' cos and sin in an .npz, or stacked as (2, positions,
width); Meta's complex freqs_cis .npy), with --config or --head-dim as usual; rows are positions
0, 1, ... unless --positions or --offset say otherwise.
per-sequence offsets: --offsets FILE holds one start position per sequence of the batch (flash-attn's
seqlen_offsets, MLX's array offset): positions offsets[b] + 0 .. S-1.
plot: --plot FILE draws the error against position and the frequencies each pair received (needs
matplotlib: pip install "numrope[bench]").
tolerance: float64 angles by default (the output is held to its dtype's rounding of the exact
rotation, as numrope.testing.assert_rope_allclose holds it); --float32-angles also accepts the
error of angles formed in float32, as Hugging Face transformers, vLLM and llama.cpp form them.
exit status: 0 match, 1 mismatch, 2 user error (missing, unreadable or empty file, shapes that
disagree, a configuration that cannot be read or evaluated).
example: numrope validate --x q.npy --actual q_rot.npy --head-dim 128 --base 500000
"""

#: What a configuration read from a file can raise once it reaches numrope (a 400-digit
#: rope_theta, a factor of 1e300, JSON nested deeper than Python's recursion limit).
CONFIG_ERRORS = (ValueError, TypeError, ArithmeticError, RecursionError, NotImplementedError)


class InputError(Exception):
    """A problem with the inputs: reported on one line, exit status 2."""


def add_parser(sub):
    p = command_parser(sub, __name__, "check a saved RoPE output against numrope and name the likely mistake", _EPILOG)
    p.set_defaults(_parser=p)
    p.add_argument("--x", metavar="PATH", help="the input that was rotated (.npy or .npz); not with --cache")
    p.add_argument("--actual", metavar="PATH", help="the rotated output to check (.npy or .npz); not with --cache")
    p.add_argument("--k", metavar="PATH", help="keys that were rotated with --x as the queries (with --actual-k)")
    p.add_argument("--actual-k", metavar="PATH", help="the rotated keys to check (with --k)")
    p.add_argument("--positions", metavar="PATH", help="positions (.npy or .npz); default 0 .. seq_len-1")
    p.add_argument("--offset", type=int, help="positions start at this value (instead of --positions)")
    p.add_argument(
        "--offsets", metavar="PATH", help="one start position per sequence, shape (batch,): offsets[b] + 0 .. S-1"
    )
    p.add_argument("--cache", metavar="PATH", help="a framework's cos/sin cache table to check (with --cache-kind)")
    p.add_argument("--cache-kind", choices=("vllm", "hf", "freqs_cis"), help="the form of --cache")
    p.add_argument("--plot", metavar="FILE", help="also draw the error and the received frequencies (matplotlib)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--config",
        metavar="CONFIG_JSON",
        help="a Hugging Face config.json (or model directory), or a llama.cpp .gguf file",
    )
    source.add_argument("--head-dim", type=int, help="head size (the last axis)")
    p.add_argument("--layer-type", help="with --config: which layer type (Gemma 3's full_attention, ...)")
    p.add_argument("--base", type=float, default=10000.0, help="frequency base, rope_theta (default 10000)")
    p.add_argument("--layout", choices=("half", "interleaved"), default="half", help="pair layout (default half)")
    p.add_argument("--rotary-dim", type=int, help="rotate only the first R features (default: all)")
    p.add_argument("--seq-axis", type=int, default=-3, help="sequence axis (default -3: batch, seq, heads, dim)")
    p.add_argument("--inverse", action="store_true", help="the output should be the inverse rotation")
    angles = p.add_mutually_exclusive_group()
    angles.add_argument(
        "--float32-angles",
        action="store_true",
        help="also accept the error of angles m*theta formed in float32, which grows with the position",
    )
    angles.add_argument("--strict", action="store_true", help="require float64 angles (the default)")
    p.add_argument("--rtol", type=float, help="relative tolerance (of each pair's norm) instead of the derived one")
    p.add_argument("--atol", type=float, help="absolute tolerance instead of the derived one")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    return p


def _npy_header(f, available: int, label: str):
    """Read a .npy header from ``f``; check that the data it announces fits in ``available`` bytes."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)  # 3.0 differs in text only
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        raise InputError(f"{label}: cannot read it as a .npy array ({_one_line(exc)})") from exc
    if dtype.hasobject:
        raise InputError(f"{label}: holds Python objects (dtype {dtype}), not numbers")
    need = math.prod(shape) * dtype.itemsize
    have = available - f.tell()
    if need > have:
        raise InputError(
            f"{label}: its header claims shape {shape} of {dtype} ({_size(need)}), but the file holds "
            f"{_size(max(have, 0))} of data"
        )
    return shape


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,} bytes" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def _load_npy(path: str) -> np.ndarray:
    try:
        with open(path, "rb") as f:
            shape = _npy_header(f, os.path.getsize(path), path)
        # memory-mapped: only what the comparison reads is read (an empty array cannot be mapped)
        return np.load(path, allow_pickle=False, mmap_mode="r" if math.prod(shape) else None)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: cannot read it as a .npy file ({_one_line(exc)})") from exc


def _load_npz(path: str, name: str | None, default_name: str) -> np.ndarray:
    try:
        with zipfile.ZipFile(path) as z:
            members = {info.filename: info for info in z.infolist()}
            arrays = [m[: -len(".npy")] for m in members if m.endswith(".npy")]
            if name is None:
                if default_name in arrays:
                    name = default_name
                elif len(arrays) == 1:
                    name = arrays[0]
                elif not arrays:
                    raise InputError(
                        f"{path}: holds no .npy arrays (its members: {list(members)[:5]}; an .npz archive "
                        "holds NAME.npy members)"
                    )
                else:
                    raise InputError(f"{path}: pick one of its arrays {arrays} with {path}:NAME")
            if name + ".npy" not in members:
                if name in members:
                    raise InputError(f"{path}:{name}: is not a .npy array (an .npz archive holds NAME.npy members)")
                raise InputError(f"{path}: no array named {name!r} (it holds {arrays})")
            info = members[name + ".npy"]
            with z.open(info) as f:
                _npy_header(f, info.file_size, f"{path}:{name}")
            with z.open(info) as f:
                return np.lib.format.read_array(f, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError) as exc:
        raise InputError(f"{path}: cannot read it as a .npz file ({_one_line(exc)})") from exc


def load_array(spec: str, default_name: str) -> np.ndarray:
    """The array named by ``spec``: PATH.npy, PATH.npz or PATH.npz:NAME. Raises InputError.

    The header is checked against the file's size before any data is read, and a .npy file is
    memory-mapped, so a file that claims a huge shape costs nothing.
    """
    path, name = spec, None
    if not os.path.exists(spec) and ":" in spec:
        path, name = spec.rsplit(":", 1)
    if not os.path.exists(path):
        raise InputError(f"{spec}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not an array file")
    if zipfile.is_zipfile(path):
        return _load_npz(path, name, default_name)
    if name is not None:
        raise InputError(f"{path}: a .npy file holds one array; drop ':{name}'")
    return _load_npy(path)


def _one_line(exc) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _named(exc) -> str:
    """The exception in one line, with its type where the message alone does not say what went wrong."""
    if isinstance(exc, (ValueError, TypeError)):
        return _one_line(exc)
    return f"{type(exc).__name__}: {_one_line(exc)}" if str(exc) else type(exc).__name__


def _unrepresentable(node, path=""):
    """(key, description) of each number in parsed JSON that no float64 holds."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _unrepresentable(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _unrepresentable(value, f"{path}[{i}]")
    elif isinstance(node, bool):
        return
    elif isinstance(node, int) and abs(node) >= 2**1024:
        yield path, f"an integer of {int(node.bit_length() * math.log10(2)) + 1} digits"
    elif isinstance(node, float) and not math.isfinite(node):
        yield path, repr(node)


def _config_key_problem(path: str) -> str | None:
    """For an overflow while reading a config: which keys hold numbers beyond float64, where the file says."""
    if os.path.isdir(path):
        path = os.path.join(path, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            found = list(_unrepresentable(json.load(f)))
    except (OSError, ValueError, RecursionError):
        return None
    if not found:
        return None
    return "; ".join(f"{key} is {what}, beyond float64" for key, what in found[:3])


def _config(args):
    import numrope

    if args.config is not None:
        if not os.path.exists(args.config):
            raise InputError(f"{args.config}: no such file")
        gguf = str(args.config).endswith(".gguf")  # a llama.cpp model file: its metadata
        try:
            cfg = (numrope.RopeConfig.from_gguf if gguf else numrope.RopeConfig.from_hf)(
                args.config, layer_type=args.layer_type
            )
        except ImportError as exc:
            raise InputError(f"{args.config}: {_one_line(exc)}") from exc
        except RecursionError as exc:
            raise InputError(
                f"{args.config}: nested too deeply to read (deeper than Python's recursion limit)"
            ) from exc
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            what = "a GGUF file" if gguf else "a config.json"
            raise InputError(f"{args.config}: cannot read it as {what} ({_one_line(exc)})") from exc
        except CONFIG_ERRORS as exc:
            if isinstance(exc, ArithmeticError):
                problem = _config_key_problem(args.config) or (
                    f"its rope parameters (rope_theta, rope_scaling) cannot be evaluated ({_named(exc)})"
                )
            else:
                problem = _named(exc)
            raise InputError(f"{args.config}: {problem}") from exc
        _evaluate(cfg, args.config)
        return cfg
    try:
        cfg = numrope.RopeConfig(head_dim=args.head_dim, base=args.base, rotary_dim=args.rotary_dim, layout=args.layout)
    except CONFIG_ERRORS as exc:
        raise InputError(f"bad configuration: {_named(exc)}") from exc
    _evaluate(cfg, "bad configuration")
    return cfg


def _evaluate(cfg, label):
    """Compute the frequencies and the attention scaling now, so that a configuration that cannot be evaluated
    is reported as such (YaRN with rope_theta 1 divides by zero) and not as a failure of the comparison."""
    try:
        inv_freq, scaling = cfg.inv_freq(), cfg.attention_scaling
    except CONFIG_ERRORS as exc:
        raise InputError(f"{label}: {_describe(cfg)}: cannot compute its frequencies ({_named(exc)})") from exc
    if not (np.isfinite(inv_freq).all() and math.isfinite(scaling) and scaling > 0):
        raise InputError(
            f"{label}: {_describe(cfg)}: its frequencies or attention scaling are not finite "
            f"(inv_freq from {inv_freq.min():.3g} to {inv_freq.max():.3g}, attention scaling {scaling:.3g})"
        )


def _describe(cfg) -> str:
    text = f"rope_theta={cfg.base:g}"
    if cfg.scaling is not None:
        text += f" with {type(cfg.scaling).__name__} scaling"
    return text


def _load_pair(args, x_opt, actual_opt, x_name, actual_name):
    x = load_array(getattr(args, x_opt), x_name)
    actual = load_array(getattr(args, actual_opt), actual_name)
    for option, a in ((x_opt, x), (actual_opt, actual)):
        if a.size == 0:
            raise InputError(
                f"--{option.replace('_', '-')} {getattr(args, option)}: holds no elements (shape {a.shape})"
            )
    if x.shape != actual.shape:
        raise InputError(
            f"shapes disagree: --{x_opt.replace('_', '-')} has shape {x.shape}, "
            f"--{actual_opt.replace('_', '-')} has shape {actual.shape}"
        )
    return x, actual


def _usage(args):
    """The combinations argparse cannot check: one line, exit status 2, as its own usage errors."""
    if args.cache is not None:
        if args.x is not None or args.actual is not None or args.k is not None or args.actual_k is not None:
            args._parser.error("give --cache, or --x and --actual, not both")
        if args.cache_kind is None:
            args._parser.error("--cache needs --cache-kind (vllm, hf or freqs_cis)")
    elif args.x is None or args.actual is None:
        args._parser.error("the following arguments are required: --x, --actual (or --cache with --cache-kind)")
    elif args.cache_kind is not None:
        args._parser.error("--cache-kind goes with --cache")


def _load_table(args):
    """The --cache table in the form its kind needs."""
    if args.cache_kind != "hf":
        return load_array(args.cache, "cos_sin_cache" if args.cache_kind == "vllm" else "freqs_cis")
    path = args.cache
    if os.path.exists(path) and zipfile.is_zipfile(path):
        return load_array(f"{path}:cos", "cos"), load_array(f"{path}:sin", "sin")
    stacked = load_array(path, "cos_sin")
    if stacked.ndim < 3 or stacked.shape[0] != 2:
        raise InputError(f"{path}: an hf table is an .npz with cos and sin, or one array (2, positions, width)")
    return stacked[0], stacked[1]


def _compare(args):
    from numrope.validation import compare, compare_qk, compare_table

    if (args.k is None) != (args.actual_k is None):
        raise InputError("give --k and --actual-k together (the keys and the rotated keys)")
    if sum(v is not None for v in (args.positions, args.offset, args.offsets)) > 1:
        raise InputError("give --positions, --offset or --offsets, not both")
    if args.cache is not None:
        if args.offsets is not None:
            raise InputError(
                "--offsets is for batches of sequences; give the rows of --cache with --positions or --offset"
            )
        table = _load_table(args)
        positions = load_array(args.positions, "positions") if args.positions is not None else args.offset
        cfg = _config(args)
        kw = {"rtol": args.rtol, "atol": args.atol, "float32_angles": bool(args.float32_angles)}
        try:
            return compare_table(table, cfg, kind=args.cache_kind, positions=positions, **kw)
        except (TypeError, ValueError, IndexError, NotImplementedError) as exc:
            raise InputError(f"--cache {args.cache}: {_one_line(exc)}") from exc
    x, actual = _load_pair(args, "x", "actual", "x", "actual")
    pair = _load_pair(args, "k", "actual_k", "k", "actual_k") if args.k is not None else None
    positions = load_array(args.positions, "positions") if args.positions is not None else args.offset
    cfg = _config(args)
    kw = {
        "seq_axis": args.seq_axis,
        "rtol": args.rtol,
        "atol": args.atol,
        "float32_angles": bool(args.float32_angles),
        "inverse": args.inverse,
    }
    if args.offsets is not None:
        kw["offsets"] = load_array(args.offsets, "offsets")
    try:
        if pair is None:
            return compare(actual, x, cfg, positions, **kw)
        k, actual_k = pair
        return compare_qk(actual, actual_k, x, k, cfg, positions, **kw)
    except (TypeError, ValueError, IndexError) as exc:
        raise InputError(_one_line(exc)) from exc
    except CONFIG_ERRORS as exc:  # a variant that depends on the sequence length, evaluated at these positions
        label = args.config if args.config is not None else "bad configuration"
        raise InputError(f"{label}: {_describe(cfg)}: cannot compute its frequencies here ({_named(exc)})") from exc


def _check_plot(args):
    """Before anything is read (the plot is the last step): matplotlib, a folder to write to, a known format."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        args._parser.exit(
            2, 'numrope validate: error: --plot needs matplotlib: install it with `pip install "numrope[bench]"`\n'
        )
    folder = os.path.dirname(os.path.abspath(args.plot))
    suffix = os.path.splitext(args.plot)[1].lstrip(".").lower()
    if not os.path.isdir(folder):
        args._parser.exit(2, f"numrope validate: error: --plot {args.plot}: no folder {folder}\n")
    known = Figure().canvas.get_supported_filetypes()
    if suffix not in known:
        args._parser.exit(
            2, f"numrope validate: error: --plot {args.plot}: the suffix names no image format ({', '.join(known)})\n"
        )


def run(args) -> int:
    _usage(args)
    if args.plot:
        _check_plot(args)
    try:
        report = _compare(args)
    except InputError as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc), "max_abs_error": None, "diagnosis": []}))
        else:
            print(f"numrope validate: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(report)
    if args.plot:
        from numrope.validation.plot import plot_report

        try:
            plot_report(report, args.plot)
        except (OSError, ValueError) as exc:
            print(f"numrope validate: error: --plot {args.plot}: {_one_line(exc)}", file=sys.stderr)
            return 2
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0 if report.ok else 1

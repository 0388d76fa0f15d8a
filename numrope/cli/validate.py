"""``numrope validate``: check a saved RoPE output against numrope and name the likely mistake.

Exit status 0 when the output matches, 1 when it does not, 2 when a file is missing or
unreadable or the arrays' shapes disagree (a one-line error).
"""

from __future__ import annotations

import json
import os
import sys
import zipfile

import numpy as np

_EPILOG = """\
arrays: .npy files, or .npz archives: PATH.npz:NAME picks an array; a bare PATH.npz picks the
array named after the option (x, actual, positions) or the archive's only array.
exit status: 0 match, 1 mismatch, 2 missing or unreadable file, or arrays whose shapes disagree.
example: numrope validate --x q.npy --actual q_rot.npy --head-dim 128 --base 500000
"""


class InputError(Exception):
    """A problem with the inputs: reported on one line, exit status 2."""


def add_parser(sub):
    p = sub.add_parser(
        "validate",
        help="check a saved RoPE output against numrope and name the likely mistake",
        description=__doc__.split("\n")[0].strip("`"),
        epilog=_EPILOG,
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    p.add_argument("--x", required=True, metavar="PATH", help="the input that was rotated (.npy or .npz)")
    p.add_argument("--actual", required=True, metavar="PATH", help="the rotated output to check (.npy or .npz)")
    p.add_argument("--positions", metavar="PATH", help="positions (.npy or .npz); default 0 .. seq_len-1")
    p.add_argument("--offset", type=int, help="positions start at this value (instead of --positions)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", metavar="CONFIG_JSON", help="a Hugging Face config.json (or model directory)")
    source.add_argument("--head-dim", type=int, help="head size (the last axis)")
    p.add_argument("--layer-type", help="with --config: which layer type (Gemma 3's full_attention, ...)")
    p.add_argument("--base", type=float, default=10000.0, help="frequency base, rope_theta (default 10000)")
    p.add_argument("--layout", choices=("half", "interleaved"), default="half", help="pair layout (default half)")
    p.add_argument("--rotary-dim", type=int, help="rotate only the first R features (default: all)")
    p.add_argument("--seq-axis", type=int, default=-3, help="sequence axis (default -3: batch, seq, heads, dim)")
    p.add_argument("--inverse", action="store_true", help="the output should be the inverse rotation")
    p.add_argument("--strict", action="store_true", help="require float64 angles (float32-angle error is a mismatch)")
    p.add_argument("--rtol", type=float, help="relative tolerance (of each pair's norm) instead of the derived one")
    p.add_argument("--atol", type=float, help="absolute tolerance instead of the derived one")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    return p


def load_array(spec: str, default_name: str) -> np.ndarray:
    """The array named by ``spec``: PATH.npy, PATH.npz or PATH.npz:NAME. Raises InputError."""
    path, name = spec, None
    if not os.path.exists(spec) and ":" in spec:
        path, name = spec.rsplit(":", 1)
    if not os.path.exists(path):
        raise InputError(f"{spec}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not an array file")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: cannot read it as a .npy or .npz file ({_one_line(exc)})") from exc
    if isinstance(data, np.ndarray):
        if name is not None:
            raise InputError(f"{path}: a .npy file holds one array; drop ':{name}'")
        return data
    with data:
        names = list(data.files)
        if name is None:
            if default_name in names:
                name = default_name
            elif len(names) == 1:
                name = names[0]
            else:
                raise InputError(f"{path}: pick one of its arrays {names} with {path}:NAME")
        if name not in names:
            raise InputError(f"{path}: no array named {name!r} (it holds {names})")
        try:
            return data[name]
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise InputError(f"{path}:{name}: cannot read it ({_one_line(exc)})") from exc


def _one_line(exc) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _config(args):
    import numrope

    if args.config is not None:
        from_hf = getattr(numrope.RopeConfig, "from_hf", None)
        if from_hf is None:  # pragma: no cover - numrope.models.hf ships with numrope
            raise InputError("--config needs RopeConfig.from_hf, which this numrope does not have")
        if not os.path.exists(args.config):
            raise InputError(f"{args.config}: no such file")
        try:
            return from_hf(args.config, layer_type=args.layer_type)
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{args.config}: cannot read it as a config.json ({_one_line(exc)})") from exc
        except (TypeError, ValueError) as exc:
            raise InputError(f"{args.config}: {_one_line(exc)}") from exc
    try:
        return numrope.RopeConfig(
            head_dim=args.head_dim, base=args.base, rotary_dim=args.rotary_dim, layout=args.layout
        )
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad configuration: {_one_line(exc)}") from exc


def _compare(args):
    from numrope.validation import compare

    x = load_array(args.x, "x")
    actual = load_array(args.actual, "actual")
    if x.shape != actual.shape:
        raise InputError(f"shapes disagree: --x has shape {x.shape}, --actual has shape {actual.shape}")
    if args.positions is not None and args.offset is not None:
        raise InputError("give --positions or --offset, not both")
    positions = load_array(args.positions, "positions") if args.positions is not None else args.offset
    cfg = _config(args)
    try:
        return compare(
            actual,
            x,
            cfg,
            positions,
            seq_axis=args.seq_axis,
            rtol=args.rtol,
            atol=args.atol,
            float32_angles=not args.strict,
            inverse=args.inverse,
        )
    except (TypeError, ValueError, IndexError) as exc:
        raise InputError(_one_line(exc)) from exc


def run(args) -> int:
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
    return 0 if report.ok else 1

"""MLX: the fused ``mlx.core.fast.rope`` kernel, and the RoPE mlx-lm's model code builds from a config.json.

mlx-lm is run at the model level: its model module for the config's ``model_type`` (the one
``mlx_lm.load`` would pick) builds the model from the config, lazily (MLX evaluates nothing until
asked, so no weight is ever computed), and the ``rope`` of one attention layer is called as the
attention calls it, ``rope(x, offset=...)`` on ``(batch, heads, seq, head_dim)`` arrays. Config
fields a model class requires but RoPE never reads (vocabulary size, MLP width, norm epsilon)
get placeholder values where the catalogue's excerpt leaves them out.

Arbitrary positions go through MLX's per-sequence offsets: each token is laid out as its own
sequence of length 1 whose offset is its position; a decoding step uses the plain integer offset.
"""

from __future__ import annotations

import copy
import re

import numpy as np

from numrope.conformance.adapters._base import (
    Adapter,
    Unsupported,
    import_module,
    input_pairs,
    pair_permutation,
    together,
)


def _mx_rotate(mx, fn, x, dtype, positions, offset):
    """``fn(a, offset)`` on x laid out for MLX; back to a float32 ``(batch, seq, heads, head_dim)`` array."""
    b, s, h, d = x.shape
    if offset is not None:  # a decoding step: (batch, heads, seq, head_dim) with an int offset
        a = mx.array(np.ascontiguousarray(x.transpose(0, 2, 1, 3))).astype(getattr(mx, dtype))
        y = fn(a, offset)
        return np.array(y.astype(mx.float32)).transpose(0, 2, 1, 3)
    a = mx.array(np.ascontiguousarray(x.reshape(b * s, h, 1, d))).astype(getattr(mx, dtype))
    pos = np.broadcast_to(np.asarray(positions, dtype=np.int32), (b, s)).reshape(-1)
    y = fn(a, mx.array(pos))
    return np.array(y.astype(mx.float32)).reshape(b, s, h, d)


class Mlx(Adapter):
    name = "mlx"
    label = "MLX"
    modules = ("mlx.core",)
    call = "mlx.core.fast.rope(x, dims, traditional=, base=, scale=, offset=)"
    variants = ("default", "linear")

    def build(self, model, cfg, notes):
        mx = import_module("mlx.core")
        scale = 1.0 / cfg.scaling.factor if cfg.scaling is not None else 1.0
        return {"mx": mx, "cfg": cfg, "scale": scale}

    def rotation(self, state, positions, dtype, offset):
        mx, cfg = state["mx"], state["cfg"]

        def fn(a, off):
            return mx.fast.rope(
                a,
                cfg.rotary_dim,
                traditional=input_pairs(cfg) == "interleaved",
                base=cfg.base,
                scale=state["scale"],
                offset=off,
            )

        return lambda x: _mx_rotate(mx, fn, x, dtype, positions, offset)


def _layer_number(path: str) -> int:
    """The layer index in a module path such as ``model.layers.5.self_attn.rope`` (-1 for none)."""
    match = re.search(r"\.(\d+)\.", path)
    return int(match.group(1)) if match else -1


def _placeholder(name: str):
    return 1e-5 if name.endswith("eps") else 1


def _build(utils, config):
    """mlx-lm's model for ``config``, filling required fields RoPE does not read; raises Unsupported."""
    config = copy.deepcopy(config)
    try:
        model_cls, args_cls = utils._get_classes(config)
    except ValueError as exc:
        raise Unsupported(f"mlx-lm: {exc}") from None
    except SystemExit:  # a model module that exits when an optional package is missing (olmo: ai2-olmo)
        raise Unsupported(
            f"mlx-lm's {config.get('model_type')!r} module exits at import (a package it needs)"
        ) from None
    for _ in range(16):
        try:
            return model_cls(args_cls.from_dict(config))
        except TypeError as exc:
            names = re.findall(r"'(\w+)'", str(exc)) if "required" in str(exc) else []
            targets = [config, config["text_config"]] if isinstance(config.get("text_config"), dict) else [config]
            added = [(t, n) for t in targets for n in names if n not in t]
            if not added:
                raise Unsupported(f"mlx-lm cannot build {config.get('model_type')!r}: {exc}") from None
            for target, name in added:
                target[name] = _placeholder(name)
    raise Unsupported(f"mlx-lm cannot build {config.get('model_type')!r}: too many required fields")


class MlxLm(Adapter):
    name = "mlx_lm"
    runtime = ("mlx",)
    modules = ("mlx.core", "mlx_lm")
    level = "model"
    call = "the model module's Attention.rope (mlx_lm.models.rope_utils.initialize_rope / nn.RoPE), rope(x, offset=)"
    variants = ("default", "linear", "yarn", "longrope", "llama3")

    def setup(self, model, cfg):
        mx = import_module("mlx.core")
        utils = import_module("mlx_lm.utils")
        built = _build(utils, model.config)
        ropes = [(name, module) for name, module in built.named_modules() if name.split(".")[-1] == "rope"]
        if not ropes:
            raise Unsupported(f"mlx-lm's {model.config.get('model_type')!r} model has no module named rope")
        ropes.sort(key=lambda r: _layer_number(r[0]))
        chosen = ropes[0]
        if model.layer_index is not None:
            matching = [r for r in ropes if _layer_number(r[0]) == model.layer_index]
            if not matching:
                raise Unsupported(f"mlx-lm's model has no rope in layer {model.layer_index}")
            chosen = matching[0]
        name, rope = chosen
        notes = [f"rope of {name} ({type(rope).__name__})"]
        text = model.text_config()
        # multi-head latent attention (DeepSeek) rotates the rope part of [nope | rope] heads
        nope = text.get("qk_nope_head_dim") if text.get("qk_rope_head_dim") else None
        reorder = None
        if cfg.layout == "interleaved_in_half_out" and getattr(rope, "traditional", False):
            # mlx-lm writes the rotated pairs back in place; the model's reference writes them in
            # rotate-half order: the same permutation of q and k, so attention is unchanged
            reorder = pair_permutation("interleaved", "half", cfg.rotary_dim)
            notes.append("output reordered: pairs written in place, put in rotate-half order")
        return {
            "mx": mx,
            "rope": rope,
            "nope": nope,
            "rope_dim": text.get("qk_rope_head_dim"),
            "reorder": reorder,
            "notes": notes,
        }

    def rotate(self, state, q, k, positions, dtype, offset=None):
        mx, rope, nope = state["mx"], state["rope"], state["nope"]

        def fn(a, off):
            return rope(a, offset=off)

        def run(x):
            split = nope if nope and x.shape[-1] == nope + state["rope_dim"] else 0
            y = _mx_rotate(mx, fn, np.ascontiguousarray(x[..., split:]), dtype, positions, offset)
            if state["reorder"] is not None:
                rd = state["reorder"].size
                y = np.concatenate([y[..., :rd][..., state["reorder"]], y[..., rd:]], axis=-1)
            return np.concatenate([x[..., :split].astype(np.float32), y], axis=-1)

        return together(run, q, k)

"""ggml (llama.cpp's tensor library): ``ggml_rope_ext`` on the CPU backend, through ggml-python's bindings.

ggml is given numrope's reading of the model's config the way llama.cpp's model code passes a
GGUF file's metadata: ``n_dims`` (the rotary part), ``mode`` 0 (adjacent pairs) or 2 (NeoX, halves),
``freq_base``, ``freq_scale = 1/factor`` (linear and YaRN), YaRN's ``ext_factor``, ``n_ctx_orig``
and ``beta_fast``/``beta_slow``, and a ``freq_factors`` tensor (LongRoPE's short or long factors,
chosen by the context as llama.cpp chooses them, and Llama 3's ``rope_freqs``, computed here by
the rule of llama.cpp's ``convert_hf_to_gguf.py``, which writes them into the GGUF file). The
attention factor, which llama.cpp's model code computes from the metadata, is numrope's: ggml
multiplies YaRN's ``1 + 0.1 ln(factor)`` in itself, so ``attn_factor`` carries the rest.
ggml forms every angle itself, in float32. Its CPU kernel takes float32 and float16, not bfloat16.
"""

from __future__ import annotations

import math

import numpy as np

from numrope.conformance.adapters._base import Adapter, Unsupported, import_module, input_pairs


def llama3_rope_freqs(cfg) -> np.ndarray:
    """The ``rope_freqs`` tensor llama.cpp's converter writes for a Llama 3 model: what ggml divides theta by.

    Examples
    --------
    >>> import numrope
    >>> from numrope.conformance.adapters.ggml_cpu import llama3_rope_freqs
    >>> cfg = numrope.RopeConfig(head_dim=128, base=500000.0, scaling=numrope.variants.Llama3(
    ...     factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=8192))
    >>> f = llama3_rope_freqs(cfg)
    >>> float(f[0]), float(f[-1])  # the highest frequency unchanged, the lowest divided by 8
    (1.0, 8.0)
    """
    s, d = cfg.scaling, cfg.rotary_dim
    freqs = 1.0 / (cfg.base ** (np.arange(0, d, 2, dtype=np.float32) / d))
    low_wavelen = s.original_max_position_embeddings / s.low_freq_factor
    high_wavelen = s.original_max_position_embeddings / s.high_freq_factor
    out = []
    for freq in freqs.tolist():
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(s.factor)
        else:
            smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (
                s.high_freq_factor - s.low_freq_factor
            )
            out.append(1 / ((1 - smooth) / s.factor + smooth))
    return np.asarray(out, dtype=np.float32)


class Ggml(Adapter):
    name = "ggml"
    label = "ggml (llama.cpp)"
    distribution = "ggml-python"
    modules = ("ggml",)
    call = (
        "ggml_rope_ext(ctx, a, positions, freq_factors, n_dims, mode, n_ctx_orig, freq_base, freq_scale, "
        "ext_factor, attn_factor, beta_fast, beta_slow)"
    )
    variants = ("default", "linear", "yarn", "longrope", "llama3")
    dtypes = ("float32", "float16")

    def build(self, model, cfg, notes):
        ggml = import_module("ggml")
        import_module("ggml.utils")
        s = cfg.scaling
        params = {"base": cfg.base, "freq_scale": 1.0, "ext": 0.0, "attn": 1.0, "beta_fast": 32.0, "beta_slow": 1.0}
        params["n_ctx_orig"], params["factors"] = 0, None
        if s is not None and s.rope_type == "linear":
            params["freq_scale"] = 1.0 / s.factor
        elif s is not None and s.rope_type == "yarn":
            if getattr(s, "extrapolation_factor", 1.0) != 1.0 or not getattr(s, "apply_yarn_scaling", True):
                raise Unsupported(
                    "this YaRN sets extrapolation_factor or apply_yarn_scaling, which the adapter does not map"
                )
            if not s.truncate:
                raise Unsupported("ggml's YaRN always rounds the correction range to whole dimensions (truncate)")
            params.update(freq_scale=1.0 / s.factor, ext=1.0, beta_fast=s.beta_fast, beta_slow=s.beta_slow)
            params["n_ctx_orig"] = int(s.original_max_position_embeddings)
            params["attn"] = cfg.attention_scaling / (1.0 + 0.1 * math.log(s.factor))
            notes.append("attn_factor: numrope's attention factor over ggml's own 1 + 0.1 ln(factor)")
        elif s is not None and s.rope_type == "longrope":
            params["attn"] = cfg.attention_scaling
            notes.append("freq_factors: short or long factors by context; attn_factor: numrope's")
        elif s is not None:  # llama3
            params["factors"] = llama3_rope_freqs(cfg)
            notes.append("freq_factors: rope_freqs by the rule of llama.cpp's convert_hf_to_gguf.py")
        mode = ggml.GGML_ROPE_TYPE_NEOX if input_pairs(cfg) == "half" else ggml.GGML_ROPE_TYPE_NORMAL
        return {"ggml": ggml, "cfg": cfg, "mode": mode, "params": params}

    def _factors(self, state, positions):
        cfg, p = state["cfg"], state["params"]
        if cfg.scaling is None or cfg.scaling.rope_type != "longrope":
            return p["factors"]
        s = cfg.scaling
        long = int(np.max(positions)) + 1 > s.original_max_position_embeddings
        return np.asarray(s.long_factor if long else s.short_factor, dtype=np.float32)

    def rotation(self, state, positions, dtype, offset):
        import ggml.utils as gu

        ggml, cfg, p = state["ggml"], state["cfg"], state["params"]
        factors = self._factors(state, positions)

        def fn(x):
            b, s, h, d = x.shape
            pos = np.broadcast_to(np.asarray(positions, dtype=np.int32), (b, s)).reshape(-1).copy()
            size = x.size * 4 * 3 + pos.size * 4 + (0 if factors is None else factors.size * 4) + (16 << 20)
            ctx = ggml.ggml_init(ggml.ggml_init_params(mem_size=size, mem_buffer=None, no_alloc=False))
            try:
                a = gu.from_numpy(np.ascontiguousarray(x.reshape(b * s, h, d).astype(dtype)), ctx)
                c = gu.from_numpy(factors, ctx) if factors is not None else None
                o = ggml.ggml_rope_ext(
                    ctx, a, gu.from_numpy(pos, ctx), c, cfg.rotary_dim, state["mode"], p["n_ctx_orig"], p["base"],
                    p["freq_scale"], p["ext"], p["attn"], p["beta_fast"], p["beta_slow"],
                )  # fmt: skip
                graph = ggml.ggml_new_graph(ctx)
                ggml.ggml_build_forward_expand(graph, o)
                ggml.ggml_graph_compute_with_ctx(ctx, graph, 1)
                y = gu.to_numpy(o).astype(np.float32).copy()
            finally:
                ggml.ggml_free(ctx)
            return y.reshape(b, s, h, d)

        return fn

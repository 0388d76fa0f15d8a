"""RoPE layers of PyTorch libraries: torchtune, rotary-embedding-torch and x-transformers.

Each is given numrope's reading of the model's config (parameter level). All three take integer
or float positions; the ones that pair adjacent features get half-layout models through the
pair permutation (see :mod:`numrope.conformance.adapters._base`).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from numrope.conformance.adapters._base import Adapter, Plumbing, import_module, input_pairs, together


def _torch_in(torch, x, dtype):
    return torch.from_numpy(np.ascontiguousarray(x)).to(getattr(torch, dtype))


class Torchtune(Adapter):
    name = "torchtune"
    label = "torchtune"
    distribution = "torchtune"
    runtime = ("torch", "torchao")
    modules = ("torch", "torchtune")
    call = (
        "RotaryPositionalEmbeddings (interleaved), Qwen2RotaryPositionalEmbeddings (half), "
        "Llama3ScaledRoPE (llama3, interleaved); module(x, input_pos=)"
    )
    variants = ("default", "llama3")
    layouts: ClassVar[dict] = {"half": "native", "interleaved": "native"}
    partial = "slice"
    #: The modules tabulate cos and sin for every position below max_seq_len; building the table for a
    #: million positions peaks at gigabytes, so the run stops at 2**18 positions (the longer contexts
    #: of a model are reported as not measured for torchtune).
    max_position = 2**18 - 1

    def setup(self, model, cfg):
        notes = self.check(cfg)
        import_module("torch")
        modules = import_module("torchtune.modules")
        rd = cfg.rotary_dim
        size = min(model.context, self.max_position + 1)
        if cfg.scaling is not None:  # llama3
            llama3 = import_module("torchtune.models.llama3_1._position_embeddings")
            s = cfg.scaling
            module = llama3.Llama3ScaledRoPE(
                rd,
                max_seq_len=size,
                base=cfg.base,
                scale_factor=s.factor,
                low_freq_factor=s.low_freq_factor,
                high_freq_factor=s.high_freq_factor,
                old_context_len=s.original_max_position_embeddings,
            )
            native = "interleaved"
            if input_pairs(cfg) == "half":
                notes.append("layout half: perm (Llama3ScaledRoPE pairs adjacent features)")
        elif input_pairs(cfg) == "half":
            qwen2 = import_module("torchtune.models.qwen2._positional_embeddings")
            module, native = qwen2.Qwen2RotaryPositionalEmbeddings(rd, max_seq_len=size, base=cfg.base), "half"
        else:
            module, native = modules.RotaryPositionalEmbeddings(rd, max_seq_len=size, base=cfg.base), "interleaved"
        return {"module": module, "plumbing": Plumbing(cfg, native, "slice"), "notes": notes}

    def rotate(self, state, q, k, positions, dtype, offset=None):
        import torch

        pos = torch.from_numpy(np.asarray(positions, dtype=np.int64))[None]

        def fn(x):
            with torch.no_grad():
                y = state["module"](_torch_in(torch, state["plumbing"].into(x), dtype), input_pos=pos)
            return state["plumbing"].out(y.float().numpy(), x)

        return together(fn, q, k)


class RotaryEmbeddingTorch(Adapter):
    name = "rotary_embedding_torch"
    label = "rotary-embedding-torch"
    distribution = "rotary-embedding-torch"
    runtime = ("torch",)
    modules = ("torch", "rotary_embedding_torch")
    call = (
        "RotaryEmbedding(dim, theta=, interpolate_factor=, theta_rescale_factor=); decoding: "
        "rotate_queries_or_keys(t, offset=); other positions: apply_rotary_emb(rope(positions), t)"
    )
    variants = ("default", "linear", "ntk")
    layouts: ClassVar[dict] = {"half": "perm", "interleaved": "native"}

    def setup(self, model, cfg):
        notes = self.check(cfg)
        import_module("torch")
        ret = import_module("rotary_embedding_torch")
        kwargs = {"dim": cfg.rotary_dim, "theta": cfg.base, "seq_before_head_dim": True}
        if cfg.scaling is not None and cfg.scaling.rope_type == "linear":
            kwargs["interpolate_factor"] = float(cfg.scaling.factor)
        elif cfg.scaling is not None:  # ntk
            kwargs["theta_rescale_factor"] = float(cfg.scaling.factor)
        rope = ret.RotaryEmbedding(**kwargs)
        return {
            "rope": rope,
            "apply": ret.apply_rotary_emb,
            "plumbing": Plumbing(cfg, "interleaved", "native"),
            "notes": notes,
        }

    def rotate(self, state, q, k, positions, dtype, offset=None):
        import torch

        rope = state["rope"]

        def fn(x):
            t = _torch_in(torch, state["plumbing"].into(x), dtype)
            with torch.no_grad():
                if offset is not None:  # the library's decoding path
                    y = rope.rotate_queries_or_keys(t, seq_dim=-3, offset=offset)
                else:  # positions of one's own: the angles of rope(positions), scaled as its decoding path scales them
                    pos = torch.from_numpy(np.asarray(positions, dtype=np.float32)) / rope.interpolate_factor
                    y = state["apply"](rope(pos)[:, None, :], t, seq_dim=-3)
            return state["plumbing"].out(y.float().numpy(), x)

        return together(fn, q, k)


class XTransformers(Adapter):
    name = "x_transformers"
    label = "x-transformers"
    distribution = "x-transformers"
    runtime = ("torch",)
    modules = ("torch", "x_transformers")
    call = (
        "x_transformers.RotaryEmbedding(dim, base=, interpolation_factor=, base_rescale_factor=)(positions) "
        "+ apply_rotary_pos_emb"
    )
    variants = ("default", "linear", "ntk")
    layouts: ClassVar[dict] = {"half": "perm", "interleaved": "native"}

    def setup(self, model, cfg):
        notes = self.check(cfg)
        import_module("torch")
        xt = import_module("x_transformers.x_transformers")
        kwargs = {"dim": cfg.rotary_dim, "base": cfg.base}
        if cfg.scaling is not None and cfg.scaling.rope_type == "linear":
            kwargs["interpolation_factor"] = float(cfg.scaling.factor)
        elif cfg.scaling is not None:  # ntk
            kwargs["base_rescale_factor"] = float(cfg.scaling.factor)
        return {
            "rope": xt.RotaryEmbedding(**kwargs),
            "apply": xt.apply_rotary_pos_emb,
            "plumbing": Plumbing(cfg, "interleaved", "native"),
            "notes": notes,
        }

    def rotate(self, state, q, k, positions, dtype, offset=None):
        import torch

        with torch.no_grad():
            freqs, scale = state["rope"](torch.from_numpy(np.asarray(positions, dtype=np.int64)))

        def fn(x):
            t = _torch_in(torch, state["plumbing"].into(x), dtype).transpose(1, 2)  # (batch, heads, seq, dim)
            with torch.no_grad():
                y = state["apply"](t, freqs, scale).transpose(1, 2)
            return state["plumbing"].out(y.float().numpy(), x)

        return together(fn, q, k)

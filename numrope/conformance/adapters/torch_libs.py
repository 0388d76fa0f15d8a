"""RoPE layers of PyTorch libraries: torchtune, rotary-embedding-torch and x-transformers.

Each is given numrope's reading of the model's config (parameter level). All three take integer
or float positions; the ones that pair adjacent features get half-layout models through the
pair permutation (see :mod:`numrope.conformance.adapters._base`).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from numrope.conformance.adapters._base import Adapter, import_module, input_pairs


class _Torch(Adapter):
    """An adapter of a PyTorch library (the module named like the adapter): q and k go in as tensors of the dtype."""

    runtime = ("torch",)

    @property
    def modules(self) -> tuple:
        return ("torch", self.name)

    def rotation(self, state, positions, dtype, offset):
        import torch

        with torch.no_grad():
            fn = self.torch_rotation(state, torch, positions, offset)

        def rotate(x):
            t = torch.from_numpy(np.ascontiguousarray(x)).to(getattr(torch, dtype))
            with torch.no_grad():
                return fn(t).float().numpy()

        return rotate

    def torch_rotation(self, state, torch, positions, offset):
        """:meth:`rotation` on tensors: a function of a ``(batch, seq, heads, d)`` tensor, run without gradients."""
        raise NotImplementedError


#: numrope's Llama 3 scaling fields -> the keywords of torchtune's Llama3ScaledRoPE.
_LLAMA3_KEYWORDS = {
    "factor": "scale_factor",
    "low_freq_factor": "low_freq_factor",
    "high_freq_factor": "high_freq_factor",
    "original_max_position_embeddings": "old_context_len",
}


class Torchtune(_Torch):
    name = "torchtune"
    runtime = ("torch", "torchao")
    call = (
        "RotaryPositionalEmbeddings (interleaved), Qwen2RotaryPositionalEmbeddings (half), "
        "Llama3ScaledRoPE (llama3, interleaved); module(x, input_pos=)"
    )
    variants = ("default", "llama3")
    partial = "slice"
    #: The modules tabulate cos and sin for every position below max_seq_len; building the table for a
    #: million positions peaks at gigabytes, so the run stops at 2**18 positions (the longer contexts
    #: of a model are reported as not measured for torchtune).
    max_position = 2**18 - 1

    def native(self, cfg) -> str:
        # Llama3ScaledRoPE pairs adjacent features; the plain modules come in both layouts
        return "interleaved" if cfg.scaling is not None else input_pairs(cfg)

    def build(self, model, cfg, notes):
        import_module("torch")
        modules = import_module("torchtune.modules")
        rd = cfg.rotary_dim
        size = min(model.context, self.max_position + 1)
        if cfg.scaling is not None:  # llama3
            llama3 = import_module("torchtune.models.llama3_1._position_embeddings")
            scaling = {theirs: getattr(cfg.scaling, ours) for ours, theirs in _LLAMA3_KEYWORDS.items()}
            module = llama3.Llama3ScaledRoPE(rd, max_seq_len=size, base=cfg.base, **scaling)
            if input_pairs(cfg) == "half":
                notes.append("layout half: perm (Llama3ScaledRoPE pairs adjacent features)")
        elif input_pairs(cfg) == "half":
            qwen2 = import_module("torchtune.models.qwen2._positional_embeddings")
            module = qwen2.Qwen2RotaryPositionalEmbeddings(rd, max_seq_len=size, base=cfg.base)
        else:
            module = modules.RotaryPositionalEmbeddings(rd, max_seq_len=size, base=cfg.base)
        return {"module": module}

    def torch_rotation(self, state, torch, positions, offset):
        pos = torch.from_numpy(np.asarray(positions, dtype=np.int64))[None]
        return lambda t: state["module"](t, input_pos=pos)


class _Lucidrains(_Torch):
    """rotary-embedding-torch and x-transformers, one author's two libraries: ``RotaryEmbedding(dim, ...)``
    with a keyword for the base and one for each scaling variant's factor, and an apply function."""

    # The libraries' base rescale factor is the NTK-aware base change, base * a**(d / (d - 2)):
    # numrope.variants.NTKAware, whose rope_type ("dynamic", as Hunyuan names it) it shares with
    # dynamic NTK; vLLM's fixed "ntk" is another formula, which they do not have.
    variants = ("default", "linear", "ntk_aware")
    layouts: ClassVar[dict] = {"half": "perm", "interleaved": "native"}
    #: The apply function, ``module.name``; RotaryEmbedding is taken from the same module.
    apply_function = ""
    #: numrope's base and each variant's factor -> the RotaryEmbedding keyword that takes it.
    keywords: ClassVar[dict] = {}
    #: Other RotaryEmbedding keywords, always given.
    options: ClassVar[dict] = {}
    #: :attr:`call` with ``{rope}`` for the RotaryEmbedding constructor and ``{apply}`` for the apply function.
    usage = ""

    @property
    def call(self) -> str:
        rope = f"RotaryEmbedding(dim, {', '.join(f'{keyword}=' for keyword in self.keywords.values())})"
        return self.usage.format(rope=rope, apply=self.apply_function.rpartition(".")[2])

    def variant(self, cfg) -> str:
        from numrope.variants import NTKAware

        return "ntk_aware" if isinstance(cfg.scaling, NTKAware) else super().variant(cfg)

    def build(self, model, cfg, notes):
        import_module("torch")
        module, _, apply = self.apply_function.rpartition(".")
        library = import_module(module)
        kwargs = {"dim": cfg.rotary_dim, self.keywords["base"]: cfg.base, **self.options}
        variant = self.variant(cfg)
        if variant != "default":
            kwargs[self.keywords[variant]] = float(cfg.scaling.alpha if variant == "ntk_aware" else cfg.scaling.factor)
        return {"rope": library.RotaryEmbedding(**kwargs), "apply": getattr(library, apply)}


class RotaryEmbeddingTorch(_Lucidrains):
    name = "rotary_embedding_torch"
    usage = "{rope}; decoding: rotate_queries_or_keys(t, offset=); other positions: {apply}(rope(positions), t)"
    apply_function = "rotary_embedding_torch.apply_rotary_emb"
    keywords: ClassVar[dict] = {"base": "theta", "linear": "interpolate_factor", "ntk_aware": "theta_rescale_factor"}
    options: ClassVar[dict] = {"seq_before_head_dim": True}

    def torch_rotation(self, state, torch, positions, offset):
        rope = state["rope"]
        if offset is not None:  # the library's decoding path
            return lambda t: rope.rotate_queries_or_keys(t, seq_dim=-3, offset=offset)
        # positions of one's own: the angles of rope(positions), scaled as its decoding path scales them
        angles = rope(torch.from_numpy(np.asarray(positions, dtype=np.float32)) / rope.interpolate_factor)
        return lambda t: state["apply"](angles[:, None, :], t, seq_dim=-3)


class XTransformers(_Lucidrains):
    name = "x_transformers"
    usage = "x_transformers.{rope}(positions) + {apply}"
    apply_function = "x_transformers.x_transformers.apply_rotary_pos_emb"
    keywords: ClassVar[dict] = {"base": "base", "linear": "interpolation_factor", "ntk_aware": "base_rescale_factor"}

    def torch_rotation(self, state, torch, positions, offset):
        freqs, scale = state["rope"](torch.from_numpy(np.asarray(positions, dtype=np.int64)))
        # (batch, seq, heads, dim) -> the library's (batch, heads, seq, dim) and back
        return lambda t: state["apply"](t.transpose(1, 2), freqs, scale).transpose(1, 2)

"""RoPE in JAX libraries: keras-hub (Keras 3 on the JAX backend), gemma and penzai.

Each is given numrope's reading of the model's config (parameter level). All three pair feature
``i`` with ``i + d/2``; interleaved models go through the pair permutation.
"""

from __future__ import annotations

import importlib.util
import math
import os
from typing import ClassVar

import numpy as np

from numrope.conformance.adapters._base import Adapter, Unsupported, import_module


class _Jax(Adapter):
    """An adapter of a JAX library (the module named like the adapter), pairing ``i`` with ``i + d/2``."""

    runtime = ("jax",)
    layouts: ClassVar[dict] = {"half": "native", "interleaved": "perm"}
    partial = "slice"

    @property
    def modules(self) -> tuple:
        return (self.name, "jax")

    @property
    def label(self) -> str:
        return f"{self.distribution} (JAX)"

    def rotation(self, state, positions, dtype, offset):
        import jax.numpy as jnp

        fn = self.jax_rotation(state, positions, dtype, offset)
        return lambda x: np.asarray(jnp.asarray(fn(jnp.asarray(x).astype(dtype))).astype(jnp.float32))

    def jax_rotation(self, state, positions, dtype, offset):
        """:meth:`rotation` on JAX arrays: by default the jitted ``state["call"](a, positions)``, with
        ``positions`` given for each sequence of the batch."""
        import jax.numpy as jnp

        def fn(a):
            return state["call"](a, jnp.asarray(np.broadcast_to(np.asarray(positions, dtype=np.int32), a.shape[:2])))

        return fn


class KerasHub(_Jax):
    name = "keras_hub"
    label = "keras-hub (JAX backend)"
    runtime = ("keras", "jax")
    modules = ("keras", "keras_hub", "jax")
    call = (
        "keras_hub.layers.RotaryEmbedding(max_wavelength=, scaling_factor=, rope_type=, ...)"
        "(x, positions=) or (x, start_index=) for a decoding step"
    )
    variants = ("default", "linear", "yarn")

    def build(self, model, cfg, notes):
        os.environ.setdefault("KERAS_BACKEND", "jax")  # read when keras is first imported
        keras = import_module("keras")
        if keras.backend.backend() != "jax":
            raise Unsupported(f"keras runs on the {keras.backend.backend()!r} backend here; set KERAS_BACKEND=jax")
        layers = import_module("keras_hub.layers")
        s = cfg.scaling
        kwargs = {"max_wavelength": cfg.base}
        if s is not None and s.rope_type == "linear":
            kwargs.update(rope_type="linear", scaling_factor=float(s.factor))
        elif s is not None:  # yarn
            if getattr(s, "extrapolation_factor", 1.0) != 1.0 or not getattr(s, "apply_yarn_scaling", True):
                raise Unsupported("keras-hub's YaRN has no extrapolation_factor or apply_yarn_scaling")
            default_factor = 0.1 * math.log(s.factor) + 1.0
            if not math.isclose(cfg.attention_scaling, default_factor, rel_tol=1e-12):
                raise Unsupported(
                    f"keras-hub's YaRN attention factor is always 0.1 ln(factor) + 1 = {default_factor:.6g}; "
                    f"this model's is {cfg.attention_scaling:.6g}"
                )
            kwargs.update(
                rope_type="yarn",
                scaling_factor=float(s.factor),
                beta_fast=float(s.beta_fast),
                beta_slow=float(s.beta_slow),
                original_max_position_embeddings=int(s.original_max_position_embeddings),
                truncate=bool(s.truncate),
            )
        return {"kwargs": kwargs, "layers": {}, "make": layers.RotaryEmbedding}

    def jax_rotation(self, state, positions, dtype, offset):
        import jax
        import jax.numpy as jnp

        calls = state["layers"].get(dtype)
        if calls is None:
            layer = state["make"](dtype=dtype, **state["kwargs"])
            calls = state["layers"][dtype] = (
                jax.jit(lambda a, pos: layer(a, positions=pos)),
                jax.jit(lambda a, start: layer(a, start_index=start)),
            )
        if offset is not None:
            return lambda a: calls[1](a, jnp.asarray(offset, dtype=jnp.int32))
        return lambda a: calls[0](a, jnp.asarray(np.asarray(positions, dtype=np.int32)))


def _gemma_apply_rope():
    """gemma's ``gm.math.apply_rope``. ``gemma.gm.math`` imports kauldron (and with it TensorFlow);
    where that is missing, gemma's own ``gm/math/_positional_embeddings.py`` is loaded from its file
    (it needs only jax): the same code, unmodified."""
    try:
        from gemma.gm.math import apply_rope

        return apply_rope
    except Exception:  # kauldron or TensorFlow missing: load the one file
        spec = importlib.util.find_spec("gemma")
        if spec is None or not spec.submodule_search_locations:
            raise Unsupported("gemma is not installed") from None
        path = os.path.join(spec.submodule_search_locations[0], "gm", "math", "_positional_embeddings.py")
        if not os.path.exists(path):
            raise Unsupported(f"gemma has no {path}") from None
        file_spec = importlib.util.spec_from_file_location("gemma_gm_math_positional_embeddings", path)
        module = importlib.util.module_from_spec(file_spec)
        try:
            file_spec.loader.exec_module(module)
        except Exception as exc:
            raise Unsupported(f"cannot load gemma's apply_rope: {type(exc).__name__}: {exc}") from None
        return module.apply_rope


class Gemma(_Jax):
    name = "gemma"
    call = "gemma.gm.math.apply_rope(x, positions, base_frequency=, scale_factor=)"
    variants = ("default", "linear")

    def build(self, model, cfg, notes):
        jax = import_module("jax")
        apply_rope = _gemma_apply_rope()
        scale = float(cfg.scaling.factor) if cfg.scaling is not None else 1.0
        return {"call": jax.jit(lambda a, pos: apply_rope(a, pos, base_frequency=cfg.base, scale_factor=scale))}


class Penzai(_Jax):
    name = "penzai"
    call = "penzai.pz.nn.ApplyRoPE / ApplyRoPEToSubset(embedding_axis=, max_wavelength=, positions_input_name=)"
    partial = "native"

    def build(self, model, cfg, notes):
        pz = import_module("penzai.pz")
        common = {"embedding_axis": "embedding", "max_wavelength": cfg.base, "positions_input_name": "positions"}
        if cfg.rotary_dim == cfg.head_dim:
            layer = pz.nn.ApplyRoPE(**common)
        else:
            layer = pz.nn.ApplyRoPEToSubset(rope_subset_size=cfg.rotary_dim, **common)
        jax = import_module("jax")

        def call(a, pos):
            named = pz.nx.wrap(a).tag("batch", "seq", "heads", "embedding")
            y = layer(named, positions=pz.nx.wrap(pos).tag("batch", "seq"))
            return y.untag("batch", "seq", "heads", "embedding").unwrap()

        return {"call": jax.jit(call)}

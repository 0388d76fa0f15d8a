"""Hugging Face transformers: each model family's rotary module and the apply function its attention calls.

The model's config.json goes through ``AutoConfig.for_model``; the family's
``<Model>RotaryEmbedding(config)`` computes cos and sin (or ``exp(i m theta)``) for the position ids,
and the function the family's attention calls rotates q and k, with the slicing the attention
does itself where it does any (Phi, GPT-J). Nothing is computed here.
"""

from __future__ import annotations

import contextlib
import copy
import inspect

import numpy as np

from numrope.conformance.adapters._base import Adapter, Unsupported, import_module, pair_permutation

#: How a family's attention calls its RoPE, where it differs from ``apply_rotary_pos_emb(q, k, cos, sin)``
#: on ``(batch, heads, seq, head_dim)`` arrays.
CONVENTIONS = {
    "llama4": "complex_bshd",  # apply_rotary_emb(xq, xk, freqs_cis), before the heads move forward
    "deepseek_v2": "complex_bhsd",  # apply_rotary_emb(q_pe, k_pe, freqs_cis)
    "gptj": "gptj",  # apply_rotary_pos_emb(x[..., :rotary_dim], sin, cos), one tensor at a time
    "phi": "sliced",  # the attention passes q[..., :rotary_ndims] to apply_rotary_pos_emb
}


@contextlib.contextmanager
def _quiet(transformers):
    """transformers' advice about the config (e.g. to prefer ``factor`` over the context ratio) kept off stderr."""
    logging = transformers.utils.logging
    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)


def _family(model_type: str) -> str:
    return model_type.removesuffix("_text")


def _rotary_class(module, family):
    found = [
        obj
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and name.endswith("RotaryEmbedding") and "Vision" not in name
    ]
    if len(found) != 1:
        names = sorted(c.__name__ for c in found)
        raise Unsupported(f"transformers.models.{family}: expected one rotary module, found {names or 'none'}")
    return found[0]


class Transformers(Adapter):
    name = "transformers"
    label = "Hugging Face transformers"
    runtime = ("torch",)
    modules = ("torch", "transformers")
    level = "model"
    call = "<Model>RotaryEmbedding(config)(x, position_ids) + the apply function the model's attention calls"
    variants = ("default", "linear", "dynamic", "yarn", "longrope", "llama3")

    def setup(self, model, cfg):
        import_module("torch")
        transformers = import_module("transformers")
        try:
            with _quiet(transformers):
                config = transformers.AutoConfig.for_model(**copy.deepcopy(model.config))
        except (ValueError, KeyError):
            raise Unsupported(
                f"model type {model.config.get('model_type')!r} is not part of transformers {transformers.__version__} "
                "(its modeling code ships with the checkpoint)"
            ) from None
        text = config.get_text_config()
        family = _family(text.model_type)
        module = import_module(f"transformers.models.{family}.modeling_{family}")
        with _quiet(transformers):
            rotary = _rotary_class(module, family)(text)
        convention = CONVENTIONS.get(family, "cos_sin")
        notes, reorder = [], False
        if family == "deepseek_v3" and getattr(text, "rope_interleave", False):
            apply = module.apply_rotary_pos_emb_interleave
            # it reads adjacent pairs and writes them in rotate-half order; where numrope's reading has
            # the pairs written back in place, the output is put back in that order (the same
            # permutation of q and k: attention unchanged)
            reorder = cfg.layout == "interleaved"
            if reorder:
                notes.append("output reordered: rotate-half order back to the input's interleaved order")
        elif convention.startswith("complex"):
            apply = module.apply_rotary_emb
        else:
            apply = module.apply_rotary_pos_emb
        kwargs = {}
        if model.layer_type is not None and "layer_type" in inspect.signature(rotary.forward).parameters:
            kwargs["layer_type"] = model.layer_type
        rotary_dim = getattr(text, "rotary_dim", None) if family == "gptj" else None
        # multi-head latent attention (DeepSeek-V2/V3) splits each head into [nope | rope] and rotates the rope part
        nope = getattr(text, "qk_nope_head_dim", None) if getattr(text, "qk_rope_head_dim", None) else None
        return {
            "rotary": rotary,
            "apply": apply,
            "convention": convention,
            "kwargs": kwargs,
            "reorder": reorder,
            "rotary_dim": rotary_dim,
            "nope": nope,
            "rope": getattr(text, "qk_rope_head_dim", None),
            "notes": notes,
        }

    def rotate(self, state, q, k, positions, dtype, offset=None):
        nope, rope = state["nope"], state["rope"]
        if nope and q.shape[-1] == nope + rope:  # the attention's split: rotate the rope part, keep the rest
            rq, rk = self._rotate(state, q[..., nope:], k[..., nope:], positions, dtype)
            return tuple(np.concatenate([x[..., :nope].astype(np.float32), r], axis=-1) for x, r in ((q, rq), (k, rk)))
        return self._rotate(state, q, k, positions, dtype)

    def _rotate(self, state, q, k, positions, dtype):
        import torch

        dt = getattr(torch, dtype)
        tq, tk = (torch.from_numpy(np.ascontiguousarray(a)).to(dt) for a in (q, k))
        pos = torch.from_numpy(np.asarray(positions, dtype=np.int64))[None]
        rotary, apply, convention = state["rotary"], state["apply"], state["convention"]
        with torch.no_grad():
            if convention == "gptj":
                sin, cos = rotary(tq, pos)
                rd = state["rotary_dim"] or tq.shape[-1]
                oq, ok = (torch.cat([apply(t[..., :rd], sin, cos), t[..., rd:]], dim=-1) for t in (tq, tk))
            elif convention == "complex_bshd":
                oq, ok = apply(tq, tk, rotary(tq, pos))
            elif convention == "complex_bhsd":
                oq, ok = apply(tq.transpose(1, 2), tk.transpose(1, 2), rotary(tq, pos))
                oq, ok = oq.transpose(1, 2), ok.transpose(1, 2)
            else:
                qh, kh = tq.transpose(1, 2), tk.transpose(1, 2)
                cos, sin = rotary(qh, pos, **state["kwargs"])
                if convention == "sliced":
                    rd = cos.shape[-1]
                    rq, rk = apply(qh[..., :rd], kh[..., :rd], cos, sin)
                    oq, ok = torch.cat([rq, qh[..., rd:]], dim=-1), torch.cat([rk, kh[..., rd:]], dim=-1)
                else:
                    oq, ok = apply(qh, kh, cos, sin)
                oq, ok = oq.transpose(1, 2), ok.transpose(1, 2)
        out = [t.float().numpy() for t in (oq, ok)]
        if state["reorder"]:
            perm = pair_permutation("half", "interleaved", out[0].shape[-1])
            out = [o[..., perm] for o in out]
        return out[0], out[1]

"""One row of the model sweep: what ``RopeConfig.from_hf`` makes of a transformers model type, checked.

:func:`sweep` builds the model type's own rotary module and attention rules (:mod:`hf_models`), reads
its default config with :meth:`numrope.RopeConfig.from_hf`, and compares: every layer group's q and k
from the model's code must be numrope's ``apply_rope_qk`` within the float32-angle bound
(``compare_qk(..., float32_angles=True)``), or None must come back exactly where the layer has no
RoPE, or ``from_hf`` must raise NotImplementedError naming what numrope lacks. Anything else is a
``MISMATCH`` row. ``tests/test_model_sweep.py`` runs it per model type and ``scripts/model_table.py``
writes the rows into the documentation (``docs/variants/model_sweep.csv``).
"""

from __future__ import annotations

import dataclasses
import re
import zlib

import hf_models as H
import torch

import numrope
from numrope.validation import compare_qk

#: What some attentions do to q and k around RoPE that is no part of RoPE (a constant scale, or
#: Llama 4's position-dependent query temperature): the sweep compares without it (scaling=False).
#: Keyed by transformers module; the hf_models SPECS that have pre_q / pre_k / post_q / post_qk.
ATTENTION_SCALES = {
    "esm": "q times head_size**-0.5 before RoPE",
    "falcon_h1": "k times key_multiplier before RoPE",
    "longcat_flash": "q times (hidden_size / q_lora_rank)**0.5 before RoPE",
    "muse_glimmer": "q times qk_scale_factor before RoPE",
    "muse_spark": "q times qk_scale_factor before RoPE",
    "ministral3": "q times 1 + llama_4_scaling_beta ln(1 + floor(m / original_max_position_embeddings)) after RoPE",
    "mistral4": "q times 1 + llama_4_scaling_beta ln(1 + floor(m / original_max_position_embeddings)) after RoPE",
    "openai_privacy_filter": "q and k times head_dim**-0.25 after RoPE",
}
_SCALE_KEYS = ("pre_q", "pre_k", "post_q", "post_qk")

REPRODUCED = "reproduced"
REFUSED = "refused"
NO_ROPE = "no RoPE"
MULTI_AXIS = "multi-axis"
OTHER = "not a text RoPE model"
MISMATCH = "MISMATCH"


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the table: ``name`` (model type, ``[variant]``), ``status`` and ``detail``."""

    name: str
    status: str
    detail: str

    def csv(self) -> list[str]:
        """The cells as the documentation's csv-table reads them: reStructuredText, its markup characters escaped."""
        return [_escape(self.name), _escape(self.status), _escape(self.detail)]


def _escape(text: str) -> str:
    return re.sub(r"([\\`*_|<>\[\]])", r"\\\1", text)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def cases() -> list[tuple[str, str | None]]:
    """(model type, variant) for every model type with a text rotary embedding, and the variants
    (flags off by default: DeepSeek-V3's rope_interleave=False, Zamba2's use_mem_rope, ...)."""
    out = []
    for model_type in H.model_types():
        out.append((model_type, None))
        spec = H.SPECS.get(H._module_of(model_type), {})
        out.extend((model_type, v) for v in sorted(spec.get("variants") or {}))
    return out


def case_id(model_type, variant) -> str:
    return model_type if variant is None else f"{model_type}[{variant}]"


def _short(message: str, n: int = 160) -> str:
    message = " ".join(str(message).split())
    return message if len(message) <= n else message[: n - 3].rstrip() + "..."


def _max_position(t) -> int:
    maxpos = H._safe_get(t._tc, "max_position_embeddings", None)
    return maxpos if isinstance(maxpos, int) and maxpos > 1 else 4096


def _inputs(t, name, layer_type, layer_idx):
    """q (2, 2, 8, D), k (2, 1, 8, D) and positions (2, 8) up to the context, seeded by the case."""
    d = t.head_dim_for(layer_type, layer_idx)
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    q = torch.randn(2, 2, 8, d, generator=g)
    k = torch.randn(2, 1, 8, d, generator=g)
    top = _max_position(t)
    pos = torch.randint(0, top, (2, 8), generator=g)
    pos[0, 0], pos[1, -1] = 0, top - 1
    return q, k, pos


def _describe(cfg, nope_layers) -> str:
    part = f"{cfg.rotary_dim} of {cfg.head_dim}"
    if cfg.rotary_offset:
        part += f" from {cfg.rotary_offset}"
    out = [cfg.layout, part]
    if cfg.scaling is not None:
        out.append(cfg.scaling.rope_type)
    if cfg.direction == -1:
        out.append("direction -1")
    if nope_layers:
        out.append("layers without RoPE")
    return ", ".join(out)


def _layer_row(t, name, layer_type, layer_idx, scaling):
    """(the configuration read, or None, or a Row that ends the sweep of this model type)."""
    try:
        cfg = numrope.RopeConfig.from_hf(t.config_dict, layer_type=layer_type, layer=layer_idx)
    except NotImplementedError as exc:
        return Row(name, REFUSED, _short(exc))
    except (ValueError, TypeError) as exc:
        return Row(name, MISMATCH, f"from_hf raised {type(exc).__name__}: {_short(exc)}")
    q, k, pos = _inputs(t, name, layer_type, layer_idx)
    applied = t.rope_applied(layer_type, layer_idx)
    if cfg is None:
        q2, k2 = t.rotate(q, k, pos, layer_type=layer_type, layer_idx=layer_idx, scaling=False)
        if applied or not (torch.equal(q2, q) and torch.equal(k2, k)):
            return Row(name, MISMATCH, f"from_hf says no RoPE for layer {layer_idx} ({layer_type}), the model rotates")
        return None
    if not applied:
        return Row(name, MISMATCH, f"layer {layer_idx} ({layer_type}) has no RoPE, from_hf read {cfg}")
    q2, k2 = t.rotate(q, k, pos, layer_type=layer_type, layer_idx=layer_idx, scaling=scaling)
    try:
        report = compare_qk(
            q2.numpy(), k2.numpy(), q.numpy(), k.numpy(), cfg, pos.numpy(), seq_axis=-2, float32_angles=True
        )
    except ValueError as exc:  # a head size that is not the model's
        return Row(name, MISMATCH, f"layer {layer_idx} ({layer_type}), {cfg}: {exc}")
    if not report.ok:
        return Row(name, MISMATCH, f"layer {layer_idx} ({layer_type}), {cfg}:\n{report}")
    return cfg


def sweep(model_type: str, variant: str | None = None) -> Row:
    """The row of one model type (or variant), checked as the module docstring says."""
    name = case_id(model_type, variant)
    t = H.build(model_type, variant)
    if t.status.startswith(("skipped: no RoPE with default", "skipped: no attention layers")):
        try:
            cfg = numrope.RopeConfig.from_hf(t.config_dict)
        except ValueError as exc:
            return Row(name, NO_ROPE, _short(exc))
        return Row(name, MISMATCH, f"no RoPE in the default config, from_hf read {cfg}")
    if t.multi_axis:
        try:
            cfg = numrope.RopeConfig.from_hf(t.config_dict)
        except (NotImplementedError, ValueError) as exc:
            return Row(name, MULTI_AXIS, f"refused: {_short(exc)}")
        if cfg is None or cfg.axes is None:
            return Row(name, MISMATCH, f"multi-axis RoPE read as one-axis RoPE: {cfg}")
        return Row(name, MULTI_AXIS, f"read with axes ({cfg.axes.n_axes} axes); see tests/test_multiaxis.py")
    if t.status != "ok":
        return Row(name, OTHER, _short(t.status.removeprefix("skipped: ")))
    module = H._module_of(model_type)
    scaled = any(t._spec.get(key) for key in _SCALE_KEYS)
    if scaled != (module in ATTENTION_SCALES):
        return Row(name, MISMATCH, "ATTENTION_SCALES does not list the q/k scalings of this model's attention")
    read, nope = [], False
    for layer_type, layer_idx in t.layer_groups():
        got = _layer_row(t, name, layer_type, layer_idx, scaling=not scaled)
        if isinstance(got, Row):
            return got
        if got is None:
            nope = True
        else:
            read.append(got)
    if not read:
        return Row(name, MISMATCH, "from_hf says no layer has RoPE")
    detail = "; ".join(sorted({_describe(cfg, nope) for cfg in read}))
    if scaled:
        detail += f" (compared without the attention's {ATTENTION_SCALES[module]})"
    return Row(name, REPRODUCED, detail)


def no_rope_model_types() -> frozenset:
    """CONFIG_MAPPING names whose modeling file defines no rotary embedding (numrope.models._no_rope)."""
    import os

    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    rope = set(H.model_types())
    out = set()
    for model_type in CONFIG_MAPPING_NAMES:
        module = H._module_of(model_type)
        if model_type not in rope and os.path.exists(H._modeling_path(module)) and not H._rotary_class_names(module):
            out.add(model_type)
    return frozenset(out)


def read_table(path) -> dict[str, Row]:
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return {_unescape(r[0]): Row(*map(_unescape, r)) for r in rows[1:]}


HEADER = ["model type", "status", "what numrope reads, or why not"]


def reproduced_share(rows) -> float:
    """Reproduced rows over reproduced and refused ones (the model types transformers can build)."""
    rows = list(rows)
    done = sum(r.status == REPRODUCED for r in rows)
    return done / max(1, done + sum(r.status == REFUSED for r in rows))

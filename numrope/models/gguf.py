"""Reading the RoPE of a llama.cpp GGUF file (:meth:`numrope.RopeConfig.from_gguf`).

A GGUF file keeps its model's hyperparameters as metadata ahead of the weights; the ``gguf`` package
(the ``numrope[gguf]`` extra) reads them, and the one small tensor RoPE may need, without loading
the rest. The keys are llama.cpp's, prefixed by the architecture (``general.architecture``):

* ``{arch}.rope.freq_base``: ``base`` (10000 where absent, as llama.cpp);
* ``{arch}.rope.dimension_count``: ``rotary_dim`` (the whole head where absent);
* ``{arch}.attention.key_length``: ``head_dim`` (else ``embedding_length / head_count``);
* ``{arch}.rope.scaling.type``: ``none``, ``linear`` (llama.cpp's default) or ``yarn``; ``longrope`` is
  refused; ``{arch}.rope.scaling.factor`` the factor (0 or absent: none);
* ``{arch}.rope.scaling.original_context_length``: YaRN's :math:`L_0` (else ``context_length``); the
  ``yarn_beta_fast``, ``yarn_beta_slow``, ``yarn_ext_factor`` and ``attn_factor`` keys: YaRN's
  ``beta_fast``, ``beta_slow``, ``extrapolation_factor`` and ``attn_factor`` (vLLM's meaning, which is
  ggml's);
* ``{arch}.rope.scaling.alpha``: the NTK-aware base change (:class:`~numrope.variants.NTKAware`);
* ``{arch}.rope.freq_base_swa``, ``dimension_count_swa``, ``attention.key_length_swa``: those of the
  sliding-window layers (``layer_type="sliding_attention"``), which are unscaled;
* the tensor ``rope_freqs.weight``: per-pair divisors of the frequencies, how llama.cpp stores Llama 3's
  scaling (``convert_hf_to_gguf.py`` computes them).

The pair layout is the architecture's rope type in llama.cpp (``llama_model_rope_type`` in
``src/llama-model.cpp``): ``LLAMA_ROPE_TYPE_NORM`` rotates adjacent features (``"interleaved"``;
llama.cpp's converter permutes Llama's q/k weights for it), ``LLAMA_ROPE_TYPE_NEOX`` features ``i`` and
``i + n_rot/2`` (``"half"``). Multi-head latent attention architectures (DeepSeek-V2/V3, MiniCPM3, ...)
rotate the last ``n_rot`` features of a head of ``key_length``. Multi-axis rope types (M-RoPE) and
architectures this table does not know are refused by name; architectures without RoPE raise ValueError.
Other keys that would change the rotation (``yarn_log_multiplier``, ``yarn_attn_factor``) are refused.
"""

from __future__ import annotations

import math
import os

import numpy as np

from numrope import variants as _scaling

#: llama.cpp's LLAMA_ROPE_TYPE_NORM architectures: pairs of adjacent features.
NORM = frozenset(
    """llama llada llama4 deci baichuan starcoder internlm2 minicpm xverse command-r cohere2 cohere2moe olmo
    arctic deepseek deepseek2 deepseek2-ocr deepseek32 deepseek4 muse-glimmer plm chatglm granite granitemoe
    granitehybrid granite-switch chameleon bailingmoe neo-bert smollm3 arcee ernie4_5 ernie4_5-moe mistral3
    eagle3 mistral4 llama-embed maincoder glm-dsa nanbeige""".split()
)
#: llama.cpp's LLAMA_ROPE_TYPE_NEOX architectures: features i and i + n_rot/2.
NEOX = frozenset(
    """falcon falcon-h1 grok dbrx bert jina-bert-v3 modern-bert nomic-bert nomic-bert-moe eurobert stablelm bitnet
    qwen qwen2 dream qwen2moe qwen3 qwen3moe llada-moe rnd1 olmo2 olmoe phi2 phi3 phimoe plamo plamo2 plamo3
    gemma gemma2 gemma3 gemma3n gemma4 gemma-embedding starcoder2 openelm gptneox codeshell orion nemotron
    exaone exaone4 exaone-moe minicpm3 bailingmoe2 dots1 hunyuan-moe jais2 gpt-oss hunyuan-dense lfm2 lfm2moe
    smallthinker seed_oss grovemoe apertus minimax-m2 cogvlm pangu-embedded afmoe qwen3next mimo2 step35""".split()
)
#: Rotary part at the end of each head (multi-head latent attention splits q and k into nope and rope).
MLA = frozenset({"deepseek2", "deepseek2-ocr", "deepseek32", "glm-dsa", "mistral4", "minicpm3"})
#: Architectures without RoPE in llama.cpp.
NONE = frozenset(
    """clip gpt2 gptj mpt refact bloom mamba mamba2 jamba jina-bert-v2 t5 t5encoder jais rwkv6 rwkv6qwen2 rwkv7
    arwkv7 wavtokenizer-dec nemotron_h nemotron_h_moe kimi-linear""".split()
)
#: Multi-axis rope types (M-RoPE, interleaved M-RoPE): not read from GGUF.
MULTI_AXIS = frozenset({"qwen2vl", "paddleocr", "qwen3vl", "qwen3vlmoe", "qwen35", "qwen35moe", "qwen3tts"})
#: NORM or NEOX unless ``rope.dimension_sections`` says M-RoPE (llama.cpp's ``hparams.use_mrope()``).
BY_SECTIONS = {"glm4": "interleaved", "glm4moe": "half", "hunyuan-vl": "half"}


def _gguf():
    try:
        import gguf
    except ImportError as exc:  # pragma: no cover - the extra is installed in the test environment
        raise ModuleNotFoundError(
            "reading GGUF files needs the gguf package: pip install 'numrope[gguf]' (or pip install gguf)"
        ) from exc
    return gguf


def _metadata(path):
    """({key: value}, {tensor name: tensor}) of a GGUF file, the weights left on disk."""
    gguf = _gguf()
    path = os.fspath(path)
    try:
        reader = gguf.GGUFReader(path)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, IndexError, KeyError) as exc:
        raise ValueError(f"{path} is not a readable GGUF file: {exc}") from exc
    values = {}
    for key, field in reader.fields.items():
        try:
            values[key] = field.contents()
        except Exception:  # a field type gguf cannot decode: not one of RoPE's
            continue
    return values, {t.name: t for t in reader.tensors}


def _number(values, key, kind=float, default=None, positive=True):
    value = values.get(key, default)
    if value is None:
        return None
    if isinstance(value, list):  # per-layer arrays: one value for every layer, or the caller picks
        if len(set(value)) != 1:
            raise NotImplementedError(f"{key} differs between layers ({sorted(set(value))}): numrope reads one value")
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{key} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(float(value)) or (positive and value <= 0):
        raise ValueError(f"{key} must be positive and finite, got {value}")
    return kind(value)


def _layout(arch, values):
    if arch in NORM:
        return "interleaved"
    if arch in NEOX:
        return "half"
    if arch in BY_SECTIONS:
        sections = values.get(f"{arch}.rope.dimension_sections")
        if sections and any(sections):
            raise NotImplementedError(
                f"architecture {arch!r} with rope.dimension_sections: M-RoPE is not read from GGUF"
            )
        return BY_SECTIONS[arch]
    if arch in MULTI_AXIS:
        raise NotImplementedError(
            f"architecture {arch!r} rotates by several coordinates (llama.cpp's M-RoPE): numrope reads multi-axis "
            "RoPE from Hugging Face configs (numrope.models.multiaxis), not from GGUF"
        )
    if arch in NONE:
        raise ValueError(f"architecture {arch!r} has no RoPE in llama.cpp")
    raise NotImplementedError(
        f"architecture {arch!r}: numrope does not know its rope type in llama.cpp (llama_model_rope_type); "
        "it reads the NORM and NEOX architectures listed in numrope.models.gguf"
    )


def _scaling_of(values, tensors, arch, n_pairs, sliding):
    p = f"{arch}.rope.scaling."
    for key, neutral in (("yarn_log_multiplier", 0.0), ("yarn_attn_factor", 1.0)):
        value = values.get(p + key)
        if value is not None and value != neutral:
            raise NotImplementedError(f"{p}{key} = {value}: numrope does not implement it")
    kind = values.get(p + "type", "linear")
    if kind not in ("none", "linear", "yarn", "longrope"):
        raise ValueError(f"{p}type must be none, linear, yarn or longrope, got {kind!r}")
    if kind == "longrope":
        raise NotImplementedError(f"{p}type 'longrope': numrope does not read LongRoPE's factor tensors from GGUF")
    factor = _number(values, p + "factor", default=values.get(f"{arch}.rope.scale_linear"), positive=False)
    factor = None if not factor or sliding else factor  # llama.cpp: 0 is no scaling; sliding layers are unscaled
    alpha = _number(values, p + "alpha")
    attn = _number(values, p + "attn_factor")
    original = _number(values, p + "original_context_length", int) or _number(values, f"{arch}.context_length", int)
    freqs = tensors.get("rope_freqs.weight")
    if alpha is not None:
        if kind == "yarn" or freqs is not None:
            raise NotImplementedError(f"{p}alpha with YaRN or rope_freqs: numrope does not combine them")
        return _scaling.NTKAware(alpha=alpha)
    if kind == "yarn" and factor is not None:
        if freqs is not None:
            raise NotImplementedError("rope_freqs with YaRN: numrope does not combine them")
        if original is None:
            raise ValueError(f"YaRN needs {p}original_context_length or {arch}.context_length")
        ext = values.get(p + "yarn_ext_factor")
        kwargs = {
            "beta_fast": _number(values, p + "yarn_beta_fast", default=32.0),
            "beta_slow": _number(values, p + "yarn_beta_slow", default=1.0),
            # ggml: a negative ext_factor (the default, -1) means 1 for YaRN
            "extrapolation_factor": 1.0 if ext is None or ext < 0 else float(ext),
            "attn_factor": 1.0 if attn is None else attn,
        }
        return _scaling.YaRN(factor=factor, original_max_position_embeddings=original, **kwargs)
    if attn not in (None, 1.0):
        raise NotImplementedError(f"{p}attn_factor = {attn} without YaRN: numrope does not implement it")
    if freqs is not None and not sliding:
        divisors = np.asarray(freqs.data, dtype=np.float64).reshape(-1)
        if divisors.size != n_pairs:
            raise ValueError(f"rope_freqs.weight has {divisors.size} factors, the rotary part {n_pairs} pairs")
        if factor is not None:
            divisors = divisors * factor
        # one set of per-pair divisors for every length: LongRoPE with equal lists and no attention factor
        return _scaling.LongRoPE(
            short_factor=tuple(divisors),
            long_factor=tuple(divisors),
            original_max_position_embeddings=original or 1,
            attention_scaling=1.0,
        )
    if factor is not None and kind == "linear":
        return _scaling.Linear(factor=factor)
    return None


def fields_from_gguf(path, *, layer_type: str | None = None) -> dict:
    """The fields of a :class:`~numrope.RopeConfig` read from a GGUF file's metadata (``RopeConfig.from_gguf``).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.gguf`` file (the first shard of a split model holds the metadata).
    layer_type : {None, "full_attention", "sliding_attention"}, optional
        For models whose sliding-window layers have their own base or rotary part
        (``rope.freq_base_swa``, ``rope.dimension_count_swa``): which layers. Must be given for them.

    Returns
    -------
    dict
        ``RopeConfig`` keyword arguments, read as the module docstring says.

    Raises
    ------
    ModuleNotFoundError
        Without the ``gguf`` package.
    ValueError, TypeError
        A file that is not GGUF, a missing or bad key (named), an architecture without RoPE.
    NotImplementedError
        An architecture or key whose RoPE numrope does not read from GGUF, named.

    Examples
    --------
    With the ``gguf`` package installed:

    >>> import os, tempfile  # doctest: +SKIP
    >>> import gguf, numrope  # doctest: +SKIP
    >>> path = os.path.join(tempfile.mkdtemp(), "model.gguf")  # doctest: +SKIP
    >>> w = gguf.GGUFWriter(path, "qwen2")  # doctest: +SKIP
    >>> w.add_embedding_length(3584); w.add_head_count(28); w.add_rope_freq_base(1e6)  # doctest: +SKIP
    >>> w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()  # doctest: +SKIP
    >>> f = fields_from_gguf(path)  # doctest: +SKIP
    >>> f["head_dim"], f["base"], f["layout"]  # doctest: +SKIP
    (128, 1000000.0, 'half')
    """
    values, tensors = _metadata(path)
    arch = values.get("general.architecture")
    if not isinstance(arch, str):
        raise ValueError(f"{os.fspath(path)} has no general.architecture: not a llama.cpp model file")
    layout = _layout(arch, values)
    swa_keys = [f"{arch}.rope.{k}" for k in ("freq_base_swa", "dimension_count_swa")]
    has_swa = any(values.get(k) is not None for k in swa_keys)
    if layer_type not in (None, "full_attention", "sliding_attention"):
        raise ValueError(f"layer_type must be 'full_attention' or 'sliding_attention', got {layer_type!r}")
    if has_swa and layer_type is None:
        given = ", ".join(k for k in swa_keys if values.get(k) is not None)
        raise ValueError(
            f"this model's sliding-window layers have their own RoPE ({given}): "
            "choose one with layer_type='full_attention' or 'sliding_attention'"
        )
    sliding = layer_type == "sliding_attention" and has_swa
    suffix = "_swa" if sliding else ""
    heads = _number(values, f"{arch}.attention.head_count", int)
    head_dim = _number(values, f"{arch}.attention.key_length{suffix}", int) or _number(
        values, f"{arch}.attention.key_length", int
    )
    if head_dim is None:
        width = _number(values, f"{arch}.embedding_length", int)
        if width is None or heads is None:
            raise ValueError(f"{arch}.attention.key_length, or {arch}.embedding_length and head_count, is required")
        head_dim = width // heads
    rotary = _number(values, f"{arch}.rope.dimension_count{suffix}", int) or _number(
        values, f"{arch}.rope.dimension_count", int
    )
    rotary = head_dim if rotary is None else rotary
    if rotary > head_dim:
        raise ValueError(f"{arch}.rope.dimension_count = {rotary} exceeds the head of {head_dim}")
    base = _number(values, f"{arch}.rope.freq_base{suffix}") or _number(values, f"{arch}.rope.freq_base") or 10000.0
    return {
        "head_dim": head_dim,
        "base": base,
        "rotary_dim": rotary,
        "layout": layout,
        "scaling": _scaling_of(values, tensors, arch, rotary // 2, sliding),
        "rotary_offset": head_dim - rotary if arch in MLA else 0,
    }

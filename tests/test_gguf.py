"""RopeConfig.from_gguf: llama.cpp GGUF metadata, written with gguf.GGUFWriter as llama.cpp's converter writes it.

Expected values are worked out from the keys' meaning in llama.cpp (``llama_model_rope_type``, the
hparams loader) and from the Hugging Face configs the same models ship with.
"""

import math
from pathlib import Path

import numpy as np
import pytest

import numrope
from numrope.cli import main
from numrope.variants import Linear, LongRoPE, NTKAware, YaRN

gguf = pytest.importorskip("gguf", reason="the gguf package (numrope[gguf]) is not installed")

FIXTURES = Path(__file__).parent / "fixtures" / "configs"


def write(path, arch, *, tensors=None, **keys):
    """A GGUF file with metadata only (and the given small tensors): {arch}.<key> = value."""
    w = gguf.GGUFWriter(str(path), arch)
    for key, value in keys.items():
        name = f"{arch}.{key.replace('__', '.')}"
        if isinstance(value, str):
            w.add_string(name, value)
        elif isinstance(value, float):
            w.add_float32(name, value)
        elif isinstance(value, list):
            w.add_array(name, value)
        else:
            w.add_uint32(name, value)
    for name, data in (tensors or {}).items():
        w.add_tensor(name, np.asarray(data, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def llama3_divisors(base, n_rot, factor, low, high, original):
    """convert_hf_to_gguf.py's rope_freqs for Llama 3.1 (Meta's apply_scaling as divisors of each frequency)."""
    freqs = base ** (-np.arange(0, n_rot, 2) / n_rot)
    out = []
    for f in freqs:
        wavelen = 2 * math.pi / f
        if wavelen < original / high:
            out.append(1.0)
        elif wavelen > original / low:
            out.append(factor)
        else:
            smooth = (original / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out)


def test_llama31_stores_its_scaling_as_rope_freqs(tmp_path):
    divisors = llama3_divisors(500000.0, 128, 8.0, 1.0, 4.0, 8192)
    path = write(
        tmp_path / "llama.gguf",
        "llama",
        context_length=131072,
        embedding_length=4096,
        attention__head_count=32,
        rope__dimension_count=128,
        rope__freq_base=500000.0,
        tensors={"rope_freqs.weight": divisors},
    )
    cfg = numrope.RopeConfig.from_gguf(path)
    # llama.cpp's NORM rope: adjacent pairs (its converter permutes Llama's q/k weights for it)
    assert (cfg.head_dim, cfg.rotary_dim, cfg.base, cfg.layout) == (128, 128, 500000.0, "interleaved")
    assert isinstance(cfg.scaling, LongRoPE) and cfg.attention_scaling == 1.0
    hf = numrope.RopeConfig.from_hf(FIXTURES / "llama-3.1-8b.json")
    # the divisors are stored in float32: relative 2**-24 each
    np.testing.assert_allclose(cfg.inv_freq(), hf.inv_freq(), rtol=2.0**-23)
    np.testing.assert_allclose(cfg.inv_freq(10**6), hf.inv_freq(), rtol=2.0**-23)  # every length alike


def test_qwen2_yarn_as_its_hugging_face_config(tmp_path):
    path = write(
        tmp_path / "qwen.gguf",
        "qwen2",
        context_length=131072,
        embedding_length=3584,
        attention__head_count=28,
        rope__freq_base=1000000.0,
        rope__scaling__type="yarn",
        rope__scaling__factor=4.0,
        rope__scaling__original_context_length=32768,
    )
    cfg = numrope.RopeConfig.from_gguf(path)
    assert cfg == numrope.RopeConfig.from_hf(FIXTURES / "qwen2.5-7b-instruct-yarn.json")
    assert cfg.layout == "half" and round(cfg.attention_scaling, 5) == 1.13863
    # ggml's yarn keys: beta_fast / beta_slow, ext_factor (negative: 1), attn_factor
    tuned = write(
        tmp_path / "tuned.gguf",
        "qwen2",
        embedding_length=3584,
        attention__head_count=28,
        rope__scaling__type="yarn",
        rope__scaling__factor=4.0,
        rope__scaling__original_context_length=32768,
        rope__scaling__yarn_beta_fast=16.0,
        rope__scaling__yarn_ext_factor=-1.0,
        rope__scaling__attn_factor=0.5,
    )
    yarn = numrope.RopeConfig.from_gguf(tuned).scaling
    assert yarn == YaRN(4.0, 32768, beta_fast=16.0, extrapolation_factor=1.0, attn_factor=0.5)


def test_linear_none_alpha_and_defaults(tmp_path):
    base = dict(embedding_length=2048, attention__head_count=16)
    assert numrope.RopeConfig.from_gguf(write(tmp_path / "a.gguf", "llama", **base)) == numrope.RopeConfig(
        128, layout="interleaved"
    )  # no freq_base: 10000, as llama.cpp; no scaling type: linear, and no factor: none
    lin = write(tmp_path / "b.gguf", "llama", **base, rope__scaling__type="linear", rope__scaling__factor=4.0)
    assert numrope.RopeConfig.from_gguf(lin).scaling == Linear(4.0)
    none = write(tmp_path / "c.gguf", "llama", **base, rope__scaling__type="none", rope__scaling__factor=4.0)
    assert numrope.RopeConfig.from_gguf(none).scaling is None
    alpha = write(tmp_path / "d.gguf", "hunyuan-dense", **base, rope__scaling__alpha=1000.0)
    assert numrope.RopeConfig.from_gguf(alpha).scaling == NTKAware(alpha=1000.0)
    # a partial rotary part: the first dimension_count features
    neox = write(
        tmp_path / "e.gguf", "gptneox", embedding_length=6144, attention__head_count=64, rope__dimension_count=24
    )
    cfg = numrope.RopeConfig.from_gguf(neox)
    assert (cfg.head_dim, cfg.rotary_dim, cfg.rotary_offset, cfg.layout) == (96, 24, 0, "half")


def test_latent_attention_rotates_the_last_features(tmp_path):
    path = write(
        tmp_path / "ds.gguf",
        "deepseek2",
        embedding_length=7168,
        attention__head_count=128,
        attention__key_length=192,
        rope__dimension_count=64,
    )
    cfg = numrope.RopeConfig.from_gguf(path)
    assert (cfg.head_dim, cfg.rotary_dim, cfg.rotary_offset, cfg.layout) == (192, 64, 128, "interleaved")


def test_sliding_window_layers(tmp_path):
    path = write(
        tmp_path / "gemma3.gguf",
        "gemma3",
        embedding_length=2560,
        attention__head_count=8,
        attention__key_length=256,
        rope__freq_base=1000000.0,
        rope__freq_base_swa=10000.0,
        rope__scaling__type="linear",
        rope__scaling__factor=8.0,
    )
    with pytest.raises(ValueError, match="sliding-window layers have their own RoPE"):
        numrope.RopeConfig.from_gguf(path)
    hf = FIXTURES / "gemma-3-4b-it.json"
    for lt in ("full_attention", "sliding_attention"):
        assert numrope.RopeConfig.from_gguf(path, layer_type=lt) == numrope.RopeConfig.from_hf(hf, layer_type=lt)


@pytest.mark.parametrize(
    ("arch", "keys", "error", "match"),
    [
        ("qwen2vl", {}, NotImplementedError, "rotates by several coordinates"),
        ("glm4", {"rope__dimension_sections": [8, 12, 12, 0]}, NotImplementedError, "M-RoPE is not read"),
        ("brand-new", {}, NotImplementedError, "does not know its rope type"),
        ("gpt2", {}, ValueError, "has no RoPE in llama.cpp"),
        ("phi3", {"rope__scaling__type": "longrope"}, NotImplementedError, "'longrope'"),
        (
            "deepseek2",
            {"rope__scaling__type": "yarn", "rope__scaling__factor": 40.0, "rope__scaling__yarn_log_multiplier": 0.1},
            NotImplementedError,
            "yarn_log_multiplier = 0.1",
        ),
        ("llama", {"rope__scaling__type": "su"}, ValueError, "must be none, linear, yarn or longrope"),
        ("llama", {"rope__freq_base": -1.0}, ValueError, "freq_base must be positive"),
    ],
)
def test_refused_by_name(tmp_path, arch, keys, error, match):
    path = write(tmp_path / "m.gguf", arch, embedding_length=1024, attention__head_count=8, context_length=4096, **keys)
    with pytest.raises(error, match=match):
        numrope.RopeConfig.from_gguf(path)


def test_not_a_gguf_file(tmp_path):
    (tmp_path / "x.gguf").write_bytes(b"not gguf at all")
    with pytest.raises(ValueError, match="not a readable GGUF file"):
        numrope.RopeConfig.from_gguf(tmp_path / "x.gguf")
    with pytest.raises(FileNotFoundError):
        numrope.RopeConfig.from_gguf(tmp_path / "missing.gguf")


def test_the_command_line_reads_gguf(tmp_path, capsys):
    path = write(
        tmp_path / "qwen.gguf", "qwen2", embedding_length=512, attention__head_count=8, rope__freq_base=1000000.0
    )
    assert main(["demo", "--config", str(path), "--max-position", "64"]) == 0
    cfg = numrope.RopeConfig.from_gguf(path)
    x = np.random.default_rng(0).standard_normal((1, 16, 2, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "good.npy", numrope.apply_rope(x, cfg))
    np.save(tmp_path / "bad.npy", numrope.apply_rope(x, numrope.RopeConfig(64, base=1e6, layout="interleaved")))
    argv = ["validate", "--config", str(path), "--x", str(tmp_path / "x.npy"), "--actual"]
    assert main([*argv, str(tmp_path / "good.npy")]) == 0
    assert main([*argv, str(tmp_path / "bad.npy")]) == 1
    (tmp_path / "junk.gguf").write_bytes(b"junk")
    assert main(["validate", "--config", str(tmp_path / "junk.gguf"), "--x", str(tmp_path / "x.npy"),
                 "--actual", str(tmp_path / "good.npy")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "junk.gguf" in err and "Traceback" not in err

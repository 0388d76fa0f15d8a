"""The diagnosis names the mistakes of real framework code: Hugging Face transformers' own rotary modules and
apply_rotary_pos_emb, built with the wrong rope_scaling, fed positions in bfloat16, with a cos/sin table formed
in float16 or an inv_freq buffer cast to bfloat16 (skipped without torch and transformers)."""

import importlib

import numpy as np
import pytest

import numrope
from numrope.validation import compare, compare_table

torch = pytest.importorskip("torch", reason="torch is not installed")
transformers = pytest.importorskip("transformers", reason="transformers is not installed")

SIZES = {"hidden_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2}  # head_dim 64
LLAMA3 = {
    "rope_theta": 500000.0,
    "max_position_embeddings": 131072,
    "rope_scaling": {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
}
QWEN2_YARN = {
    "rope_theta": 1e6,
    "max_position_embeddings": 131072,
    "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048},
}
FAR = 1000 + 97 * np.arange(64)  # up to 7111


def _rotary(module, config_class, kwargs):
    config = getattr(transformers, config_class)(**SIZES, **kwargs)
    modeling = importlib.import_module(f"transformers.models.{module}.modeling_{module}")
    rotary_class = next(getattr(modeling, n) for n in dir(modeling) if n.endswith("RotaryEmbedding"))
    return config, modeling, rotary_class(config=config)


def _cfg(module, config_class, kwargs):
    return numrope.RopeConfig.from_hf(_rotary(module, config_class, kwargs)[0].to_dict())


def _q(seq, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 4, seq, 64, generator=g)  # (batch, heads, seq, head_dim)


def _apply(modeling, q, cos, sin):
    with torch.no_grad():
        return modeling.apply_rotary_pos_emb(q, q, cos, sin)[0]


def transformers_output(module, config_class, kwargs, positions, *, position_ids=None, table=None):
    """(q, q_rot) from transformers' rotary module and apply_rotary_pos_emb; ``position_ids`` replaces the
    positions the module sees, ``table(rotary, position_ids)`` the cos/sin it computes."""
    _, modeling, rotary = _rotary(module, config_class, kwargs)
    q = _q(len(positions))
    ids = torch.from_numpy(np.asarray(positions))[None] if position_ids is None else position_ids
    with torch.no_grad():
        cos, sin = rotary(q, ids) if table is None else table(rotary, ids)
    return q, _apply(modeling, q, cos, sin)


def kinds(report):
    return [f.kind for f in report.diagnosis]


def details(report, kind):
    return next(f.details for f in report.diagnosis if f.kind == kind)


def check(q_rot, q, cfg, positions):
    return compare(q_rot, q, cfg, positions, seq_axis=-2)


# -- a scaling forgotten or wrong ------------------------------------------------------------------------------


def test_llama3_rotary_built_without_its_rope_scaling():
    cfg = _cfg("llama", "LlamaConfig", LLAMA3)
    q, q_rot = transformers_output("llama", "LlamaConfig", {**LLAMA3, "rope_scaling": None}, FAR)
    report = check(q_rot, q, cfg, FAR)
    assert kinds(report) == ["scaling"], report
    assert details(report, "scaling")["mistake"] == "missing"
    assert "Llama 3 scaling is missing" in report.diagnosis[0].message


def test_llama3_rotary_built_with_the_wrong_factor():
    cfg = _cfg("llama", "LlamaConfig", LLAMA3)
    wrong = {**LLAMA3, "rope_scaling": {**LLAMA3["rope_scaling"], "factor": 32.0}}  # Llama 3.2's for 3.1's
    q, q_rot = transformers_output("llama", "LlamaConfig", wrong, FAR)
    report = check(q_rot, q, cfg, FAR)
    assert kinds(report) == ["scaling"], report
    assert details(report, "scaling")["parameter"] == "factor"
    assert "factor is 32" in report.diagnosis[0].message


def test_qwen2_yarn_with_the_wrong_factor():
    cfg = _cfg("qwen2", "Qwen2Config", QWEN2_YARN)
    wrong = {**QWEN2_YARN, "rope_scaling": {**QWEN2_YARN["rope_scaling"], "factor": 8.0}}
    q, q_rot = transformers_output("qwen2", "Qwen2Config", wrong, FAR)
    report = check(q_rot, q, cfg, FAR)
    assert kinds(report) == ["scaling"], report
    assert details(report, "scaling")["parameter"] == "factor"


def test_qwen2_yarn_without_its_attention_factor():
    """A YaRN config whose attention factor is dropped on the way (vllm-project/vllm#46280 in reverse)."""
    cfg = _cfg("qwen2", "Qwen2Config", QWEN2_YARN)
    without = {**QWEN2_YARN, "rope_scaling": {**QWEN2_YARN["rope_scaling"], "attention_factor": 1.0}}
    q, q_rot = transformers_output("qwen2", "Qwen2Config", without, FAR)
    report = check(q_rot, q, cfg, FAR)
    assert kinds(report) == ["attention_scaling"], report
    assert details(report, "attention_scaling")["mistake"] == "missing"
    assert "YaRN's 0.1 ln(s) + 1 for s = 4" in report.diagnosis[0].message


@pytest.mark.parametrize(("meant", "used"), [("dynamic", "linear"), ("linear", "dynamic")])
def test_linear_and_dynamic_mixed_up(meant, used):
    def config(rope_type):
        return {"max_position_embeddings": 2048, "rope_scaling": {"rope_type": rope_type, "factor": 4.0}}

    positions = 37 * np.arange(64)  # up to 2331: past 2048, where dynamic NTK starts to scale
    cfg = _cfg("llama", "LlamaConfig", config(meant))
    q, q_rot = transformers_output("llama", "LlamaConfig", config(used), positions)
    report = check(q_rot, q, cfg, positions)
    assert kinds(report) == ["scaling"], report
    assert details(report, "scaling")["mistake"] == "variant"
    assert details(report, "scaling")["scaling"].startswith({"linear": "linear(", "dynamic": "dynamic NTK("}[used])


# -- positions and tables in a narrow float -----------------------------------------------------------------------


def test_position_ids_cast_to_bfloat16():
    cfg = _cfg("llama", "LlamaConfig", {"rope_theta": 10000.0})
    positions = 8100 + np.arange(64)
    ids = torch.from_numpy(positions)[None].to(torch.bfloat16)  # 8190 and 8191 both become 8192
    q, q_rot = transformers_output("llama", "LlamaConfig", {"rope_theta": 10000.0}, positions, position_ids=ids)
    report = check(q_rot, q, cfg, positions)
    assert kinds(report) == ["position_precision"], report
    assert details(report, "position_precision")["precision"] == "bfloat16"


def test_inv_freq_buffer_cast_to_bfloat16():
    """model.to(torch.bfloat16) casts the inv_freq buffer too (huggingface/transformers#29496)."""

    def table(rotary, ids):
        rotary.inv_freq = rotary.inv_freq.to(torch.bfloat16)
        return rotary(torch.zeros(1, dtype=torch.float32), ids)

    cfg = _cfg("llama", "LlamaConfig", {"rope_theta": 10000.0})
    positions = 20 * np.arange(64)
    q, q_rot = transformers_output("llama", "LlamaConfig", {"rope_theta": 10000.0}, positions, table=table)
    report = check(q_rot, q, cfg, positions)
    assert kinds(report) == ["frequency_precision"], report
    assert details(report, "frequency_precision")["precision"] == "bfloat16"


def test_cos_sin_table_computed_in_float16():
    """The angles m * theta formed in float16, as a cache built in the model's dtype forms them
    (EleutherAI/gpt-neox#1003): the angle error grows with the angle, some 11 bits."""

    def table(rotary, ids):
        freqs = ids[..., None].to(torch.float16) * rotary.inv_freq.to(torch.float16)
        emb = torch.cat((freqs, freqs), dim=-1).float()
        return emb.cos(), emb.sin()

    cfg = _cfg("llama", "LlamaConfig", {"rope_theta": 10000.0})
    positions = np.arange(2048)  # exact in float16: only the products round
    q, q_rot = transformers_output("llama", "LlamaConfig", {"rope_theta": 10000.0}, positions, table=table)
    report = check(q_rot, q, cfg, positions)
    assert "angle_precision" in kinds(report), report
    assert "float16" in next(f.message for f in report.diagnosis if f.kind == "angle_precision")


# -- two mistakes at once -----------------------------------------------------------------------------------------


def test_wrong_rope_theta_and_positions_off_by_one():
    cfg = _cfg("llama", "LlamaConfig", {"rope_theta": 500000.0})
    positions = 100 + np.arange(64)
    ids = torch.from_numpy(positions + 1)[None]
    q, q_rot = transformers_output("llama", "LlamaConfig", {"rope_theta": 10000.0}, positions, position_ids=ids)
    report = check(q_rot, q, cfg, positions)
    assert kinds(report) == ["base", "offset"], report
    assert details(report, "base")["base"] == 10000.0 and details(report, "offset")["offset"] == 1


# -- transformers' own cos/sin as a table ---------------------------------------------------------------------------


def _hf_table(kwargs, n=4096, position_ids=None):
    _, _, rotary = _rotary("llama", "LlamaConfig", kwargs)
    ids = torch.arange(n)[None] if position_ids is None else position_ids
    with torch.no_grad():
        cos, sin = rotary(torch.zeros(1, dtype=torch.float32), ids)
    return cos.numpy(), sin.numpy()


def test_transformers_tables_read_and_checked():
    cfg = _cfg("llama", "LlamaConfig", LLAMA3)
    cos, sin = _hf_table(LLAMA3)
    ok = compare_table((cos, sin), cfg, kind="hf", float32_angles=True)
    assert ok.ok and ok.diagnosis == (), ok
    wrong = compare_table(_hf_table({**LLAMA3, "rope_scaling": None}), cfg, kind="hf", float32_angles=True)
    assert [f.kind for f in wrong.diagnosis] == ["scaling"], wrong
    assert wrong.diagnosis[0].details["mistake"] == "missing"


def test_transformers_table_of_bfloat16_positions():
    cfg = _cfg("llama", "LlamaConfig", {"rope_theta": 10000.0})
    ids = torch.arange(4096)[None].to(torch.bfloat16)
    report = compare_table(_hf_table({"rope_theta": 10000.0}, position_ids=ids), cfg, kind="hf", float32_angles=True)
    assert [f.kind for f in report.diagnosis] == ["position_precision"], report

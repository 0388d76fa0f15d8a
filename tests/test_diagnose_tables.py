"""Frameworks' cos/sin tables (numrope.validation.tables) and per-sequence offsets (numrope.positions_from_offsets).

The tables are built as the frameworks build them, from numrope's float64 tables or plain NumPy, with the
mistake applied; never with the code under test.
"""

import dataclasses

import numpy as np
import pytest

import numrope
from numrope import reference
from numrope.validation import compare, compare_qk, compare_table, emulate
from numrope.validation.tables import from_framework
from numrope.variants import YaRN

ml_dtypes = pytest.importorskip("ml_dtypes")

CFG = numrope.RopeConfig(head_dim=64, base=10000.0)
N = 1024


def exact(cfg=CFG, n=N, positions=None):
    """float64 cos and sin, (n, pairs), of numpy's cos/sin of the float64 angles (within an ulp or two)."""
    pos = np.arange(n) if positions is None else np.asarray(positions, dtype=np.float64)
    angle = pos[:, None] * cfg.inv_freq()
    a = cfg.attention_scaling
    return a * np.cos(angle), a * np.sin(angle)


def vllm(cos, sin):
    return np.concatenate([cos, sin], axis=-1)


def hf(cos, sin):
    return np.concatenate([cos, cos], axis=-1), np.concatenate([sin, sin], axis=-1)


def kinds(report):
    return [f.kind for f in report.diagnosis]


# -- reading the tables ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["vllm", "hf", "freqs_cis", "freqs_cis_real"])
def test_from_framework_reads_every_form(kind):
    cos, sin = numrope.rope_cache(CFG, 64)  # float32
    table = {
        "vllm": lambda: vllm(cos, sin),
        "hf": lambda: hf(cos, sin)[0][None],  # with transformers' batch axis
        "freqs_cis": lambda: (cos + 1j * sin).astype(np.complex64),
        "freqs_cis_real": lambda: np.stack([cos, sin], axis=-1),  # torch.view_as_real
    }[kind]()
    if kind == "hf":
        table = (table, hf(cos, sin)[1][None])
    c, s = from_framework(table, kind.replace("_real", ""), CFG)
    assert c.shape == s.shape == (64, 32) and c.dtype == np.float32 and c.flags.c_contiguous
    np.testing.assert_array_equal(c, cos)
    np.testing.assert_array_equal(s, sin)
    x = np.random.default_rng(0).standard_normal((1, 64, 2, 64)).astype(np.float32)
    np.testing.assert_array_equal(numrope.apply_rope(x, CFG, cache=(c, s)), numrope.apply_rope(x, CFG))


def test_from_framework_reads_torch_and_bfloat16():
    torch = pytest.importorskip("torch")
    cos, sin = numrope.rope_cache(CFG, 16)
    t = torch.from_numpy(vllm(cos, sin)).to(torch.bfloat16)
    c, s = from_framework(t, "vllm", CFG)
    assert c.dtype == np.float32
    np.testing.assert_array_equal(c, emulate.round_to(cos, "bfloat16"))
    fc = torch.polar(torch.ones(16, 32), torch.from_numpy(np.arange(16)[:, None] * CFG.inv_freq()).float())
    c, s = from_framework(fc, "freqs_cis", CFG)
    np.testing.assert_allclose(c, cos, atol=2e-6)
    np.testing.assert_allclose(s, sin, atol=2e-6)


def test_from_framework_refuses_by_name():
    cos, sin = numrope.rope_cache(CFG, 8)
    with pytest.raises(ValueError, match="rotary_dim=32"):
        from_framework(vllm(cos[:, :16], sin[:, :16]), "vllm", CFG)
    with pytest.raises(ValueError, match="repeat_interleave"):
        from_framework((np.repeat(cos, 2, -1), np.repeat(sin, 2, -1)), "hf", CFG)
    with pytest.raises(ValueError, match="kind"):
        from_framework(vllm(cos, sin), "mlx", CFG)
    with pytest.raises(TypeError, match="pair"):
        from_framework(vllm(cos, sin), "hf", CFG)
    with pytest.raises(TypeError, match="complex"):
        from_framework(cos, "freqs_cis", CFG)
    with pytest.raises(TypeError, match="floats"):
        from_framework(np.zeros((8, 64), dtype=np.int32), "vllm", CFG)


# -- checking them ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["vllm", "hf", "freqs_cis"])
def test_a_correct_table_matches(kind):
    cos, sin = exact()
    table = {"vllm": vllm(cos, sin), "hf": hf(cos, sin), "freqs_cis": cos + 1j * sin}[kind]
    report = compare_table(table, CFG, kind=kind)
    assert report.ok and report.diagnosis == (), report
    assert report.shape == (N, 32)


def test_a_table_of_float32_angles_is_precision():
    """vLLM's _compute_cos_sin_cache: inv_freq, positions, their product and cos/sin in float32."""
    inv_freq = np.float32(1) / np.power(np.float32(10000), np.arange(0, 64, 2, dtype=np.float32) / np.float32(64))
    angle = np.arange(4096, dtype=np.float32)[:, None] * inv_freq
    table = vllm(np.cos(angle), np.sin(angle))
    assert kinds(compare_table(table, CFG, kind="vllm")) == ["precision"]
    assert compare_table(table, CFG, kind="vllm", float32_angles=True).ok


def test_table_mistakes_are_named():
    cos, sin = exact(n=N + 1)
    shifted = compare_table(vllm(cos[1:], sin[1:]), CFG, kind="vllm")  # built for positions 1 .. N
    assert kinds(shifted) == ["offset"] and shifted.diagnosis[0].details["offset"] == 1
    swapped = compare_table(vllm(sin[:N], cos[:N]), CFG, kind="vllm")
    assert kinds(swapped) == ["direction"] and swapped.diagnosis[0].details["mistake"] == "cos_sin_swapped"
    interleaved = compare_table((np.repeat(cos[:N], 2, -1), np.repeat(sin[:N], 2, -1)), CFG, kind="hf")
    assert kinds(interleaved) == ["layout"] and not interleaved.ok
    narrow = compare_table(vllm(cos[:N, :16], sin[:N, :16]), CFG, kind="vllm")
    assert kinds(narrow)[0] == "rotary_dim" and narrow.diagnosis[0].details["rotary_dim"] == 32


def test_table_of_positions_rounded_to_float16():
    rounded = emulate.round_to(np.arange(4096), "float16").astype(np.float64)
    report = compare_table(np.exp(1j * rounded[:, None] * CFG.inv_freq()), CFG, kind="freqs_cis")
    assert kinds(report) == ["position_precision"], report
    assert report.diagnosis[0].details["precision"] == "float16"


def test_table_without_the_yarn_attention_factor():
    cfg = numrope.RopeConfig(head_dim=64, base=1e6, scaling=YaRN(factor=4.0, original_max_position_embeddings=2048))
    without = dataclasses.replace(cfg, scaling=dataclasses.replace(cfg.scaling, attention_scaling=1.0))
    report = compare_table(vllm(*exact(without)), cfg, kind="vllm")
    assert kinds(report) == ["attention_scaling"] and report.diagnosis[0].details["mistake"] == "missing"


def test_table_whose_row_zero_was_never_written():
    cos, sin = exact()
    cos[0], sin[0] = 0.0, 0.0
    report = compare_table(vllm(cos, sin), CFG, kind="vllm")
    assert kinds(report)[0] == "position_zero", report


def test_the_worst_element_is_located_in_the_table():
    cos, sin = exact()
    sin[700, 5] += 0.01  # one value of one row wrong
    for kind, table in (("vllm", vllm(cos, sin)), ("freqs_cis", cos + 1j * sin)):
        report = compare_table(table, CFG, kind=kind)
        w = report.worst
        assert (w["pair"], w["position"], w["index"][0]) == (5, 700.0, 700), w
        assert w["table"] in ("cos", "sin")  # the pair's norm decides: either of its values
        column = 5 + (32 if kind == "vllm" and w["table"] == "sin" else 0)  # cat(cos, sin) in vLLM's table
        assert w["index"] == (700, column) and w["feature"] == column
        assert "element (700, " in str(report)


def test_a_bfloat16_table_is_held_to_bfloat16():
    cos, sin = exact()
    table = vllm(cos, sin).astype(ml_dtypes.bfloat16)
    report = compare_table(table, CFG, kind="vllm")
    assert report.ok and report.precision == "bfloat16", report


def test_table_rows_at_given_positions():
    cos, sin = exact(positions=5000 + np.arange(64))
    assert compare_table(vllm(cos, sin), CFG, kind="vllm", positions=5000).ok
    assert not compare_table(vllm(cos, sin), CFG, kind="vllm").ok


def test_multi_axis_tables_are_refused():
    cfg = numrope.RopeConfig.from_hf(
        {
            "model_type": "qwen2_vl",
            "hidden_size": 256,
            "num_attention_heads": 2,
            "rope_theta": 10000.0,
            "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
        }
    )
    cos, sin = numrope.rope_cache(dataclasses.replace(cfg, axes=None), 8)
    with pytest.raises(NotImplementedError, match="multi-axis"):
        compare_table(vllm(cos, sin), cfg, kind="vllm")


# -- per-sequence offsets ---------------------------------------------------------------------------------------


def test_positions_from_offsets():
    np.testing.assert_array_equal(numrope.positions_from_offsets([3, 0], 4), [[3, 4, 5, 6], [0, 1, 2, 3]])
    assert numrope.positions_from_offsets(np.array([2, 9], dtype=np.uint8), 2).dtype == np.int64
    assert numrope.positions_from_offsets(np.zeros((2, 3), int), 5).shape == (2, 3, 5)
    assert "positions_from_offsets" in numrope.__all__
    with pytest.raises(TypeError, match="integer"):
        numrope.positions_from_offsets([0.5], 3)
    with pytest.raises(TypeError, match="seq_len"):
        numrope.positions_from_offsets([0], 3.0)
    with pytest.raises(ValueError, match="non-negative"):
        numrope.positions_from_offsets([0], -1)
    with pytest.raises(ValueError, match="int64"):
        numrope.positions_from_offsets(np.array([2**63 - 2], dtype=np.uint64), 3)


@pytest.mark.parametrize("seq_axis", [-3, -2])
def test_compare_takes_offsets(rng, seq_axis):
    offsets = np.array([0, 17, 4096])
    x = rng.standard_normal((3, 16, 4, 64)).astype(np.float32)
    y = reference.complex_form(x.astype(np.float64), CFG, offsets[:, None] + np.arange(16)).astype(np.float32)
    if seq_axis == -2:
        x, y = np.swapaxes(x, 1, 2), np.swapaxes(y, 1, 2)
    assert compare(y, x, CFG, offsets=offsets, seq_axis=seq_axis).ok
    assert not compare(y, x, CFG, seq_axis=seq_axis).ok
    assert compare_qk(y, y, x, x, CFG, offsets=offsets, seq_axis=seq_axis).ok
    with pytest.raises(ValueError, match="not both"):
        compare(y, x, CFG, 0, offsets=offsets, seq_axis=seq_axis)
    ignored = reference.complex_form(np.asarray(x, np.float64), CFG, np.arange(16), seq_axis=seq_axis)
    report = compare(ignored.astype(np.float32), x, CFG, offsets=offsets, seq_axis=seq_axis)
    assert kinds(report) == ["batch_rows"], report


@pytest.mark.parametrize("option", [{"seq_axis": -2}, {"inverse": True}, {"offsets": [0]}])
def test_compare_table_refuses_options_that_are_not_a_tables(option):
    """A table has no sequence axis to choose, no direction and no sequences: such options are a TypeError."""
    cos, sin = exact(n=8)
    with pytest.raises(TypeError, match=next(iter(option))):
        compare_table(vllm(cos, sin), CFG, kind="vllm", **option)

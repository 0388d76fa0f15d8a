"""The diagnosis of numrope.validation.compare: two mistakes at once, scaling mistakes, and the signatures the
received angles show. Every broken output is made with numrope's plain-NumPy reference (or emulate) with the
mistake applied, never with the code that diagnoses it; transformers' own outputs are in
test_diagnose_transformers.py.
"""

import dataclasses

import numpy as np
import pytest

import numrope
from numrope import reference
from numrope.validation import compare, compare_qk, emulate
from numrope.variants import NTK, DynamicNTK, Linear, Llama3, LongRoPE, YaRN

ml_dtypes = pytest.importorskip("ml_dtypes")

PLAIN = numrope.RopeConfig(head_dim=64, base=10000.0)
LLAMA3 = numrope.RopeConfig(
    head_dim=64,
    base=500000.0,
    scaling=Llama3(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=8192),
)
YARN = numrope.RopeConfig(head_dim=64, base=1e6, scaling=YaRN(factor=4.0, original_max_position_embeddings=2048))


def kinds(report):
    return [f.kind for f in report.diagnosis]


def details(report, kind):
    return next(f.details for f in report.diagnosis if f.kind == kind)


def make_x(rng, shape=(2, 64, 4, 64), dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def broken(x, cfg, positions=None, dtype=np.float32, **kw):
    """A framework's output with a mistake: the float64 reference, rounded to the output dtype."""
    return reference.complex_form(np.asarray(x, dtype=np.float64), cfg, positions, **kw).astype(dtype)


def rotate_with(x, cfg, cos, sin):
    """x rotated with the given per-token cos and sin (shape (S, n_pairs)): a kernel reading its own table."""
    x = np.asarray(x, dtype=np.float64)
    j0, j1 = cfg.pair_indices()
    c, s = cos[:, None, :], sin[:, None, :]
    out = x.copy()
    out[..., j0] = x[..., j0] * c - x[..., j1] * s
    out[..., j1] = x[..., j1] * c + x[..., j0] * s
    return out


# -- two mistakes at once -----------------------------------------------------------------------------------


POSITIONS = 100 + np.arange(64)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_layout_and_offset(rng, dtype):
    x = make_x(rng, dtype=dtype)
    out = broken(x, dataclasses.replace(PLAIN, layout="interleaved"), POSITIONS + 3, dtype)
    report = compare(out, x, PLAIN, POSITIONS)
    assert kinds(report) == ["layout", "offset"], report
    assert details(report, "offset")["offset"] == 3 and details(report, "layout")["layout"] == "interleaved"


@pytest.mark.parametrize("used", [500000.0, 1e6])
def test_base_and_offset(rng, used):
    x = make_x(rng)
    out = broken(x, dataclasses.replace(PLAIN, base=used), POSITIONS - 1)
    report = compare(out, x, PLAIN, POSITIONS)
    assert kinds(report) == ["base", "offset"], report
    assert details(report, "base")["base"] == pytest.approx(used, rel=1e-6)
    assert details(report, "offset")["offset"] == -1


def test_offset_and_direction(rng):
    x = make_x(rng)
    report = compare(broken(x, PLAIN, POSITIONS + 1, inverse=True), x, PLAIN, POSITIONS)
    assert kinds(report) == ["direction", "offset"], report
    assert details(report, "direction")["mistake"] == "inverse" and details(report, "offset")["offset"] == 1


def test_base_and_scaling(rng):
    """The Llama 3 scaling forgotten and the base of Llama 2 used: both named."""
    x = make_x(rng)
    out = broken(x, dataclasses.replace(LLAMA3, base=10000.0, scaling=None), 1000 + 37 * np.arange(64))
    report = compare(out, x, LLAMA3, 1000 + 37 * np.arange(64))
    assert kinds(report) == ["base", "scaling"], report
    assert details(report, "base")["base"] == 10000.0 and details(report, "scaling")["mistake"] == "missing"


def test_attention_factor_and_offset(rng):
    x = make_x(rng)
    without = dataclasses.replace(YARN, scaling=dataclasses.replace(YARN.scaling, attention_scaling=1.0))
    report = compare(broken(x, without, POSITIONS + 2), x, YARN, POSITIONS)
    assert kinds(report) == ["attention_scaling", "offset"], report
    assert details(report, "attention_scaling")["mistake"] == "missing"


def test_two_mistakes_in_keys_only(rng):
    cfg = PLAIN
    q, k = make_x(rng), make_x(rng)
    q_rot = numrope.apply_rope(q, cfg, POSITIONS)
    k_bad = broken(k, dataclasses.replace(cfg, layout="interleaved"), POSITIONS + 1)
    report = compare_qk(q_rot, k_bad, q, k, cfg, POSITIONS)
    assert [f.kind for f in report.diagnosis] == ["layout", "offset"]
    assert all(f.message.startswith("k: ") for f in report.diagnosis)


# -- scaling variants forgotten or wrong ----------------------------------------------------------------------

FAR = 1000 + 97 * np.arange(64)  # up to 7111: past where Llama 3 and YaRN change the low frequencies


@pytest.mark.parametrize("cfg", [LLAMA3, YARN], ids=["llama3", "yarn"])
def test_scaling_missing(rng, cfg):
    x = make_x(rng)
    report = compare(broken(x, dataclasses.replace(cfg, scaling=None), FAR), x, cfg, FAR)
    assert kinds(report) == ["scaling"], report
    assert details(report, "scaling")["mistake"] == "missing"


@pytest.mark.parametrize(
    ("cfg", "changes", "parameter"),
    [
        (LLAMA3, {"factor": 4.0}, "factor"),
        (LLAMA3, {"original_max_position_embeddings": 4096}, "original_max_position_embeddings"),
        (LLAMA3, {"low_freq_factor": 2.0}, "low_freq_factor/high_freq_factor"),
        (YARN, {"factor": 8.0}, "factor"),
        (YARN, {"beta_fast": 16.0}, "beta_fast/beta_slow"),
        (YARN, {"original_max_position_embeddings": 4096}, "original_max_position_embeddings"),
    ],
)
def test_scaling_parameter_off(rng, cfg, changes, parameter):
    x = make_x(rng)
    used = dataclasses.replace(cfg, scaling=dataclasses.replace(cfg.scaling, **changes))
    report = compare(broken(x, used, FAR), x, cfg, FAR)
    assert kinds(report) == ["scaling"], report
    found = details(report, "scaling")
    assert found["mistake"] == "parameter" and found["parameter"] == parameter
    for key, value in changes.items():
        assert f"{key}={value:g}" in found["scaling"] or f"{key}={value}" in found["scaling"]


@pytest.mark.parametrize(
    ("meant", "used"),
    [
        (DynamicNTK(factor=4.0, max_position_embeddings=2048), Linear(factor=4.0)),
        (Linear(factor=4.0), DynamicNTK(factor=4.0, max_position_embeddings=2048)),
        (NTK(factor=4.0), Linear(factor=4.0)),
    ],
    ids=["linear-for-dynamic", "dynamic-for-linear", "linear-for-ntk"],
)
def test_scaling_variant_swapped(rng, meant, used):
    cfg = numrope.RopeConfig(head_dim=64, scaling=meant)
    x = make_x(rng)
    positions = 37 * np.arange(64)  # up to 2331: past the dynamic variant's 2048
    report = compare(broken(x, dataclasses.replace(cfg, scaling=used), positions), x, cfg, positions)
    assert kinds(report) == ["scaling"], report
    found = details(report, "scaling")
    assert found["mistake"] == "variant"
    assert found["scaling"].startswith({Linear: "linear(", DynamicNTK: "dynamic NTK("}[type(used)])


def test_dynamic_ntk_evaluated_at_another_length(rng):
    """vLLM evaluates dynamic NTK once, at its maximum length; transformers at the positions seen."""
    cfg = numrope.RopeConfig(head_dim=64, scaling=DynamicNTK(factor=4.0, max_position_embeddings=2048))
    x = make_x(rng)
    positions = 37 * np.arange(64)
    out = broken(x, cfg, positions, seq_len=8192)  # the table built for 8192 positions
    report = compare(out, x, cfg, positions)  # compared at max(positions) + 1
    assert kinds(report) == ["scaling"], report
    assert details(report, "scaling") == {"mistake": "seq_len", "seq_len": 8192, "compared_seq_len": 2332}


def test_longrope_short_factors_for_long(rng):
    short, long = tuple(np.linspace(1.0, 2.0, 32)), tuple(np.linspace(1.0, 16.0, 32))
    lr = LongRoPE(short_factor=short, long_factor=long, original_max_position_embeddings=4096, factor=32.0)
    cfg = numrope.RopeConfig(head_dim=64, scaling=lr)
    x = make_x(rng)
    positions = 4000 + 97 * np.arange(64)  # past 4096: the long factors
    out = broken(x, cfg, positions, seq_len=4096)  # the length compared with 4096 by another rule: short
    report = compare(out, x, cfg, positions)
    assert kinds(report) == ["scaling"], report
    assert details(report, "scaling")["mistake"] in ("parameter", "seq_len")


# -- positions and frequencies in a narrow float --------------------------------------------------------------


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_positions_rounded(rng, precision):
    x = make_x(rng)
    positions = 3000 + np.arange(64)
    rounded = emulate.round_to(positions, precision).astype(np.float64)
    report = compare(broken(x, PLAIN, rounded), x, PLAIN, positions)
    assert kinds(report) == ["position_precision"], report
    assert details(report, "position_precision")["precision"] == precision


def test_frequencies_rounded_to_bfloat16(rng):
    """An inv_freq buffer cast to bfloat16 with the model: the angles m * bf16(theta) in float64."""
    x = make_x(rng)
    positions = 20 * np.arange(64)
    theta = emulate.round_to(PLAIN.inv_freq(), "bfloat16").astype(np.float64)
    angle = positions[:, None] * theta
    out = rotate_with(x, PLAIN, np.cos(angle), np.sin(angle)).astype(np.float32)
    report = compare(out, x, PLAIN, positions)
    assert kinds(report) == ["frequency_precision"], report
    assert details(report, "frequency_precision")["precision"] == "bfloat16"


# -- batch rows ---------------------------------------------------------------------------------------------

OFFSETS = np.array([0, 40, 700, 5000])


def test_every_row_rotated_for_the_first_rows_positions(rng):
    x = make_x(rng, (4, 32, 4, 64))
    positions = numrope.positions_from_offsets(OFFSETS, 32)
    out = broken(x, PLAIN, np.broadcast_to(positions[0], positions.shape))
    report = compare(out, x, PLAIN, positions)
    assert kinds(report) == ["batch_rows"], report
    assert details(report, "batch_rows")["mistake"] == "first_row"


def test_rows_with_their_own_wrong_offsets(rng):
    x = make_x(rng, (4, 32, 4, 64))
    positions = numrope.positions_from_offsets(OFFSETS, 32)
    out = broken(x, PLAIN, positions + np.array([0, 1, -2, 5])[:, None])
    report = compare(out, x, PLAIN, positions)
    assert kinds(report) == ["batch_rows"], report
    assert details(report, "batch_rows")["mistake"] == "row_offsets"


@pytest.mark.parametrize("heads_first", [False, True])
def test_rows_after_the_first_left_as_zeros(rng, heads_first):
    """mx.fast.rope with seq_len 1 and batch > 1 wrote only row 0 (ml-explore/mlx#3949)."""
    x = make_x(rng, (4, 1, 8, 64))
    out = broken(x, PLAIN, OFFSETS[:, None])
    out[1:] = 0
    args = (out, x, PLAIN, OFFSETS[:, None])
    if heads_first:
        args = (np.swapaxes(out, 1, 2), np.swapaxes(x, 1, 2), PLAIN, OFFSETS[:, None])
    report = compare(*args, seq_axis=-2 if heads_first else -3)
    assert kinds(report) == ["batch_rows"], report
    found = details(report, "batch_rows")
    assert found["good_rows"] == [0] and found["bad_rows"] == [1, 2, 3]
    assert "zero" in report.diagnosis[0].message


# -- the signatures of the received angles -------------------------------------------------------------------


def test_position_zero_not_the_identity(rng):
    """A cos/sin cache whose row 0 was never written (zeros): every other position right."""
    x = make_x(rng)
    cos, sin = numrope.rope_cache(PLAIN, 64, dtype=np.float64)
    cos[0], sin[0] = 0.0, 0.0
    report = compare(rotate_with(x, PLAIN, cos, sin).astype(np.float32), x, PLAIN)
    assert "position_zero" in kinds(report), report
    assert kinds(report)[0] == "position_zero"


def test_position_zero_turned_by_a_quarter(rng):
    x = make_x(rng)
    cos, sin = numrope.rope_cache(PLAIN, 64, dtype=np.float64)
    cos[0], sin[0] = 0.0, 1.0  # row 0 holds (sin, cos) of angle 0
    report = compare(rotate_with(x, PLAIN, cos, sin).astype(np.float32), x, PLAIN)
    assert kinds(report) == ["position_zero"], report
    assert "quarter turn" in report.diagnosis[0].message


def test_tokens_rotated_for_other_positions(rng):
    """Positions gathered in the wrong order (reversed, they would be a direction and an offset: shuffled here):
    no offset, no rounding, no batch row explains it."""
    x = make_x(rng)
    report = compare(broken(x, PLAIN, rng.permutation(POSITIONS)), x, PLAIN, POSITIONS)
    assert kinds(report) == ["positions"], report
    assert report.diagnosis[0].details["tokens"] >= 60


def test_low_frequency_band_off(rng):
    """Two Llama 3 parameters off at once: no single candidate matches, the band is named from the angles."""
    x = make_x(rng)
    used = dataclasses.replace(LLAMA3, scaling=dataclasses.replace(LLAMA3.scaling, factor=6.0, low_freq_factor=1.5))
    report = compare(broken(x, used, FAR), x, LLAMA3, FAR)
    assert "frequencies" in kinds(report), report
    found = details(report, "frequencies")
    assert found["band"] == "low" and found["pairs"][0] > 0
    assert found["last_ratio"] == pytest.approx(8 / 6, rel=1e-3)  # received over cfg's: theta/6 for theta/8
    text = str(report)
    assert "frequencies each pair received" in text and "differs" in text


def test_base_by_a_power_law_under_another_mistake(rng):
    """A wrong base and angles formed in float16: the base is read from the power law of the received frequencies."""
    x = make_x(rng, (1, 256, 4, 64))
    used = dataclasses.replace(PLAIN, base=500000.0)
    positions = np.arange(256)
    angle = emulate.round_to(positions[:, None] * used.inv_freq(), "float16").astype(np.float64)
    out = rotate_with(x, PLAIN, np.cos(angle), np.sin(angle)).astype(np.float32)
    report = compare(out, x, PLAIN, positions)
    assert "frequencies" in kinds(report), report
    found = details(report, "frequencies")
    assert found["band"] == "power_law" and found["base"] == pytest.approx(500000.0, rel=1e-3)


def test_angle_error_growing_with_the_angle(rng):
    """Angles m * theta formed in float16 (a cos/sin table computed in the model's half precision)."""
    x = make_x(rng, (1, 2048, 4, 64))
    positions = np.arange(2048)
    theta = PLAIN.inv_freq().astype(np.float32)  # float32 frequencies, as transformers keeps them
    angle = (positions.astype(np.float16)[:, None] * theta.astype(np.float16)).astype(np.float64)
    out = rotate_with(x, PLAIN, np.cos(angle), np.sin(angle)).astype(np.float32)
    report = compare(out, x, PLAIN, positions)
    assert "angle_precision" in kinds(report), report
    assert 10 < details(report, "angle_precision")["bits"] < 12
    assert "float16" in next(f.message for f in report.diagnosis if f.kind == "angle_precision")


def test_norms_not_kept_when_sin_is_read_from_the_wrong_column(rng):
    """cos_sin_cache = cat(cos, sin) of rotary_dim 48, read with the sin offset of the padded width 64
    (vllm-project/vllm-ascend#12723): sin comes from the wrong columns and past the row's end."""
    cfg = numrope.RopeConfig(head_dim=48)
    cos, sin = numrope.rope_cache(cfg, 64, dtype=np.float64)
    cache = np.concatenate([cos, sin, np.zeros((64, 16))], axis=-1)  # the row, padded to 64 columns
    x = make_x(rng, (1, 64, 4, 48))
    out = rotate_with(x, cfg, cache[:, :24], cache[:, 32:56]).astype(np.float32)
    report = compare(out, x, cfg)
    assert kinds(report) == ["norm_ratio"], report
    assert details(report, "norm_ratio")["mistake"] == "varies"


def test_constant_norm_ratio_under_another_mistake(rng):
    """YaRN's attention factor applied to plain RoPE, with angles in float16: both signatures named."""
    x = make_x(rng, (1, 2048, 4, 64))
    positions = np.arange(2048)
    angle = (positions.astype(np.float16)[:, None] * PLAIN.inv_freq().astype(np.float16)).astype(np.float64)
    a = 0.1 * np.log(4.0) + 1
    out = rotate_with(x, PLAIN, a * np.cos(angle), a * np.sin(angle)).astype(np.float32)
    report = compare(out, x, PLAIN, positions)
    assert "norm_ratio" in kinds(report), report
    found = details(report, "norm_ratio")
    assert found["mistake"] == "constant" and found["ratio"] == pytest.approx(a, rel=1e-3)
    assert "s = 4" in next(f.message for f in report.diagnosis if f.kind == "norm_ratio")


def test_garbage_is_still_unexplained(rng):
    x = make_x(rng)
    report = compare(np.float32(0.5) * x + np.float32(0.25), x, PLAIN)
    assert kinds(report) == ["unexplained"], report


# -- the angle analysis in the report ---------------------------------------------------------------------------


def test_the_report_carries_the_received_frequencies(rng):
    x = make_x(rng)
    used = dataclasses.replace(LLAMA3, scaling=dataclasses.replace(LLAMA3.scaling, factor=4.0))
    report = compare(broken(x, used, FAR), x, LLAMA3, FAR)
    angles = report.to_dict()["angles"]
    expected, got = np.array(angles["theta_expected"]), np.array(angles["theta"])
    np.testing.assert_allclose(expected, LLAMA3.inv_freq(), rtol=1e-12)
    np.testing.assert_allclose(got, used.inv_freq(), rtol=1e-6)  # recovered from the angles alone
    assert angles["frequencies"]["band"] == "low"
    assert "frequencies each pair received" in str(report)


def test_no_frequency_table_where_the_frequencies_are_right(rng):
    x = make_x(rng)
    report = compare(broken(x, PLAIN, POSITIONS + 1), x, PLAIN, POSITIONS)
    assert kinds(report) == ["offset"]
    assert report.angles is not None and report.angles["frequencies"] is None
    assert "frequencies each pair received" not in str(report)
    assert compare(numrope.apply_rope(x, PLAIN), x, PLAIN).angles is None  # a match: nothing to analyse

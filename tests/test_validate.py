"""numrope.validation: every diagnosis triggered by a deliberately broken output and named; correct outputs pass.

Broken outputs are made with the plain-NumPy reference (float64) or with numrope.validation.emulate (float32
angles, as transformers), never with the code that diagnoses them.
"""

import dataclasses
import json

import numpy as np
import pytest

import numrope
from numrope import reference
from numrope.validation import compare, compare_qk, emulate, error_bound
from numrope.variants import RopeScaling

ml_dtypes = pytest.importorskip("ml_dtypes")


@dataclasses.dataclass(frozen=True)
class Mscale(RopeScaling):
    """Frequencies unchanged, cos and sin multiplied by ``factor`` (YaRN's attention factor alone)."""

    factor: float = 1.25

    def inv_freq(self, inv_freq, cfg, seq_len):
        return np.array(inv_freq, dtype=np.float64)

    def attention_factor(self, cfg):
        return self.factor


DTYPES = ["float64", "float32", "bfloat16", "float16"]
PLAIN = numrope.RopeConfig(head_dim=64, base=10000.0)
CONFIGS = {
    "half": PLAIN,
    "interleaved": numrope.RopeConfig(head_dim=64, base=500000.0, layout="interleaved"),
    "partial": numrope.RopeConfig(head_dim=64, base=10000.0, rotary_dim=32),
}


def in_dtype(a, dtype):
    return np.asarray(a, dtype=ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)


def make_x(rng, dtype, shape=(2, 48, 3, 64)):
    return in_dtype(rng.standard_normal(shape), dtype)


def rotated(x, cfg, dtype, positions=None, **kw):
    """A framework's output: the float64 reference, or float32 angles rounded as transformers rounds."""
    if dtype == "float64":
        return reference.complex_form(x, cfg, positions, **kw)
    return emulate.apply_rope(x, cfg, positions, dtype=dtype, **kw)


def kinds(report):
    return [f.kind for f in report.diagnosis]


def cos_sin_swapped(x, cfg, positions):
    """x0 sin - x1 cos, x1 sin + x0 cos, written out."""
    x = np.asarray(x, dtype=np.float64)
    angle = np.asarray(positions, dtype=np.float64)[:, None, None] * cfg.inv_freq()
    j0, j1 = cfg.pair_indices()
    out = x.copy()
    out[..., j0] = x[..., j0] * np.sin(angle) - x[..., j1] * np.cos(angle)
    out[..., j1] = x[..., j1] * np.sin(angle) + x[..., j0] * np.cos(angle)
    return out


# -- correct outputs are not flagged ---------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CONFIGS)
def test_numrope_and_float32_angle_outputs_match(rng, dtype, name):
    cfg = CONFIGS[name]
    x = make_x(rng, dtype)
    positions = 3000 + 37 * np.arange(x.shape[1])  # far enough for float32 angles to show
    if dtype != "bfloat16":
        own = numrope.apply_rope(x, cfg, positions)
        report = compare(own, x, cfg, positions, float32_angles=False)
        assert report.ok, report
        assert report.diagnosis == () and report.notes == ()
    framework = rotated(x, cfg, dtype, positions)
    report = compare(framework, x, cfg, positions, float32_angles=True)
    assert report.ok, report
    assert report.diagnosis == ()


def test_float32_angles_are_precision_not_a_bug(rng):
    cfg = numrope.RopeConfig(head_dim=128, base=500000.0)
    x = make_x(rng, "float32", (1, 256, 2, 128))
    positions = np.arange(256) * 512  # up to 130560
    framework = emulate.apply_rope(x, cfg, positions)
    accepted = compare(framework, x, cfg, positions, float32_angles=True)
    assert accepted.ok and accepted.diagnosis == ()
    assert [f.kind for f in accepted.notes] == ["precision"]
    strict = compare(framework, x, cfg, positions)  # float64 angles: the default
    assert not strict.ok
    assert kinds(strict) == ["precision"]
    assert strict.diagnosis[0].details["angles"] == "float32"
    # the error grows with position
    early, late = np.array_split(strict.error_by_position, 4)[0], np.array_split(strict.error_by_position, 4)[-1]
    assert late.max() > 4 * early.max()


def test_a_real_bug_is_not_called_precision(rng):
    """Positions rounded to bfloat16 (autocast on position_ids) is a bug, even though it is 'precision'."""
    cfg = numrope.RopeConfig(head_dim=64)
    x = make_x(rng, "float32", (1, 300, 2, 64))
    positions = np.arange(300) + 1000
    rounded = np.asarray(positions, dtype=ml_dtypes.bfloat16).astype(np.float64)
    bug = reference.complex_form(x, cfg, rounded).astype(np.float32)
    report = compare(bug, x, cfg, positions)
    assert not report.ok
    assert "precision" not in kinds(report)
    assert kinds(report) == ["position_precision"]


def test_cos_sin_table_rounded_to_bfloat16(rng):
    cfg = PLAIN
    x = make_x(rng, "float32")
    vllm_like = emulate.apply_rope(x, cfg, table="bfloat16", compute="float32")
    report = compare(vllm_like, x, cfg)
    assert kinds(report) == ["precision"]
    assert report.diagnosis[0].details["table"] == "bfloat16"


# -- each mistake is named --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CONFIGS)
def test_layout_swapped(rng, dtype, name):
    cfg = CONFIGS[name]
    x = make_x(rng, dtype)
    other = "interleaved" if cfg.layout == "half" else "half"
    report = compare(rotated(x, dataclasses.replace(cfg, layout=other), dtype), x, cfg)
    assert kinds(report) == ["layout"], report
    assert report.diagnosis[0].details["layout"] == other


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("base", "used"), [(10000.0, 500000.0), (500000.0, 10000.0), (1e6, 123456.0)])
def test_wrong_base_is_estimated(rng, dtype, base, used):
    cfg = numrope.RopeConfig(head_dim=64, base=base)
    x = make_x(rng, dtype)
    report = compare(rotated(x, dataclasses.replace(cfg, base=used), dtype), x, cfg)
    assert kinds(report) == ["base"], report
    found = report.diagnosis[0].details
    assert found["estimated"] == pytest.approx(used, rel=1e-3 if dtype == "bfloat16" else 1e-4)
    assert found["base"] == pytest.approx(used, rel=1e-2)  # the simplest value the data cannot tell apart


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("offset", [1, -1, 7, 1000])
def test_positions_off_by_a_constant(rng, dtype, offset):
    cfg = CONFIGS["half"]
    x = make_x(rng, dtype)
    positions = 20 + np.arange(x.shape[1])
    report = compare(rotated(x, cfg, dtype, positions + offset), x, cfg, positions)
    assert kinds(report) == ["offset"], report
    assert report.diagnosis[0].details["offset"] == offset


def test_offset_with_per_sequence_positions_and_heads_first(rng):
    cfg = CONFIGS["interleaved"]
    x = make_x(rng, "float32", (2, 3, 40, 64))  # (batch, heads, seq, dim)
    positions = np.stack([np.arange(40), 100 + np.arange(40)])[:, None, :]
    broken = emulate.apply_rope(x, cfg, positions + 1, seq_axis=-2)
    report = compare(broken, x, cfg, positions, seq_axis=-2)
    assert kinds(report) == ["offset"] and report.diagnosis[0].details["offset"] == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_attention_scaling_missing_or_doubled(rng, dtype):
    cfg = dataclasses.replace(PLAIN, scaling=Mscale(1.25))
    x = make_x(rng, dtype)
    missing = compare(rotated(x, PLAIN, dtype), x, cfg)
    assert kinds(missing) == ["attention_scaling"], missing
    assert missing.diagnosis[0].details["mistake"] == "missing"
    doubled_cfg = dataclasses.replace(PLAIN, scaling=Mscale(1.25**2))
    doubled = compare(rotated(x, doubled_cfg, dtype), x, cfg)
    assert kinds(doubled) == ["attention_scaling"], doubled
    assert doubled.diagnosis[0].details["mistake"] == "doubled"


def test_output_scaled_without_attention_scaling(rng):
    x = make_x(rng, "float32")
    report = compare(2 * numrope.apply_rope(x, PLAIN), x, PLAIN)
    assert kinds(report) == ["attention_scaling"]
    assert report.diagnosis[0].details["factor"] == pytest.approx(2.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("cfg_dim", "used"), [(64, 32), (32, 64), (64, 16), (48, 64)])
def test_wrong_rotary_dim(rng, dtype, cfg_dim, used):
    cfg = numrope.RopeConfig(head_dim=64, rotary_dim=cfg_dim)
    x = make_x(rng, dtype)
    report = compare(rotated(x, dataclasses.replace(cfg, rotary_dim=used), dtype), x, cfg)
    assert kinds(report) == ["rotary_dim"], report
    assert report.diagnosis[0].details["rotary_dim"] == used


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CONFIGS)
def test_inverse_direction(rng, dtype, name):
    cfg = CONFIGS[name]
    x = make_x(rng, dtype)
    report = compare(rotated(x, cfg, dtype, inverse=True), x, cfg)
    assert kinds(report) == ["direction"], report
    assert report.diagnosis[0].details["mistake"] == "inverse"
    # and the other way round: an inverse expected, a forward rotation given
    back = compare(rotated(x, cfg, dtype), x, cfg, inverse=True)
    assert kinds(back) == ["direction"] and back.diagnosis[0].details["mistake"] == "inverse"


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16"])
def test_cos_sin_swapped(rng, dtype):
    cfg = CONFIGS["half"]
    x = make_x(rng, dtype)
    broken = in_dtype(cos_sin_swapped(x, cfg, np.arange(x.shape[1])), dtype)
    report = compare(broken, x, cfg)
    assert kinds(report) == ["direction"], report
    assert report.diagnosis[0].details["mistake"] == "cos_sin_swapped"


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_q_and_k_swapped(rng, dtype):
    cfg = CONFIGS["half"]
    q, k = make_x(rng, dtype), make_x(rng, dtype)
    q_rot, k_rot = rotated(q, cfg, dtype), rotated(k, cfg, dtype)  # float32 angles
    assert compare_qk(q_rot, k_rot, q, k, cfg, float32_angles=True).ok
    for float32_angles in (True, False):  # the swap is named whichever the tolerance
        report = compare_qk(k_rot, q_rot, q, k, cfg, float32_angles=float32_angles)
        assert not report.ok
        assert [f.kind for f in report.diagnosis] == ["swapped"]


def test_compare_qk_grouped_query_names_the_broken_one(rng):
    cfg = CONFIGS["half"]
    q, k = make_x(rng, "float32", (1, 32, 8, 64)), make_x(rng, "float32", (1, 32, 2, 64))
    q_rot = numrope.apply_rope(q, cfg)
    k_bad = numrope.apply_rope(k, dataclasses.replace(cfg, layout="interleaved"))
    report = compare_qk(q_rot, k_bad, q, k, cfg)
    assert report.q.ok and not report.k.ok
    assert [f.kind for f in report.diagnosis] == ["layout"]
    assert report.diagnosis[0].message.startswith("k: ")
    assert "keys:" in str(report)


def test_garbage_is_unexplained(rng):
    x = make_x(rng, "float32")
    report = compare(x + np.float32(0.25), x, PLAIN)
    assert kinds(report) == ["unexplained"]
    nan = numrope.apply_rope(x, PLAIN)
    nan[0, 5, 1, 3] = np.nan
    report = compare(nan, x, PLAIN)
    assert not report.ok and report.n_outside == 1


# -- the report -------------------------------------------------------------------------------


def test_worst_element_and_ulps(rng):
    cfg = numrope.RopeConfig(head_dim=16, layout="interleaved")
    x = make_x(rng, "float32", (2, 10, 3, 16))
    positions = np.stack([np.arange(10), 50 + np.arange(10)])
    y = numrope.apply_rope(x, cfg, positions)
    j = 5  # pair 2 in the interleaved layout (features 4 and 5)
    r = np.hypot(float(y[1, 7, 2, 4]), float(y[1, 7, 2, 5]))
    y[1, 7, 2, j] += np.float32(40 * np.spacing(np.float32(r)))
    report = compare(y, x, cfg, positions)
    assert not report.ok and report.n_outside == 1
    w = report.worst
    assert w["index"] == (1, 7, 2, 5)
    assert (w["position"], w["head"], w["feature"], w["pair"]) == (57.0, (2,), 5, 2)
    assert 38 <= report.max_ulp_error <= 42
    assert report.max_rel_error == pytest.approx(40 * np.spacing(np.float32(r)) / r, rel=0.05)
    assert report.error_by_position[np.searchsorted(report.positions, 57)] == report.max_rel_error


def test_report_is_json_and_readable(rng):
    x = make_x(rng, "float32")
    report = compare(numrope.apply_rope(x, dataclasses.replace(PLAIN, base=20000.0)), x, PLAIN)
    d = json.loads(json.dumps(report.to_dict()))
    assert d["ok"] is False and d["diagnosis"][0]["kind"] == "base"
    assert {"max_abs_error", "max_rel_error", "max_ulp_error", "worst", "error_by_position"} <= set(d)
    text = str(report)
    assert "mismatch" in text and "base=20000" in text and "furthest outside its bound" in text
    assert "diagnosis=[base]" in repr(report)


def test_bad_inputs(rng):
    x = make_x(rng, "float32")
    with pytest.raises(ValueError, match="same shape"):
        compare(x[:, :5], x, PLAIN)
    with pytest.raises(TypeError, match="floats"):
        compare(x.astype(np.int32), x, PLAIN)
    with pytest.raises(ValueError, match="head_dim=32"):
        compare(x, x, numrope.RopeConfig(head_dim=32))
    with pytest.raises(ValueError, match="positions"):
        compare(x, x, PLAIN, np.arange(3))
    with pytest.raises(TypeError, match="RopeConfig"):
        compare(x, x, "cfg")
    with pytest.raises(ValueError, match="rtol"):
        compare(x, x, PLAIN, rtol=-1.0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        compare_qk(x, x, x, x, PLAIN, tolerance=1)


# -- garbage is refused -----------------------------------------------------------------------

# base 100, head_dim 16: every pair's float32-angle error bound passes pi below position 2**27
FAR_CFG = numrope.RopeConfig(head_dim=16, base=100.0)
FAR = 2**30 + 3 * np.arange(32)


def test_non_finite_inputs_are_refused(rng):
    x = make_x(rng, "float64", (1, 4, 1, 16))
    y = reference.complex_form(x, FAR_CFG)
    for bad in (np.inf, -np.inf, np.nan):
        x_bad = x.copy()
        x_bad[0, 1, 0, 0] = bad
        junk = y.copy()
        junk[0, 1, 0, 0], junk[0, 1, 0, 8] = 0.0, 123.0
        with pytest.raises(ValueError, match=r"x holds 1 NaN or infinite values \(the first at index \(0, 1, 0, 0\)\)"):
            compare(junk, x_bad, FAR_CFG)
    for huge in (1e308, 1.5e308):  # bounds of a few times the pair norm overflow: every bound infinite
        with pytest.raises(ValueError, match="too large for float64"):
            compare(np.zeros_like(x), np.full_like(x, huge), FAR_CFG)


def test_non_finite_outputs_are_counted_and_said(rng):
    x = make_x(rng, "float32", (1, 8, 2, 16))
    y = emulate.apply_rope(x, FAR_CFG)
    y[0, 2, 1, 3], y[0, 5, 0, 9] = np.nan, np.inf
    report = compare(y, x, FAR_CFG)
    assert not report.ok and report.n_outside == 2 and report.n_nonfinite == 2
    assert "actual holds 2 NaN or infinite values" in str(report)
    assert report.to_dict()["n_nonfinite"] == 2


def test_float32_angle_allowance_never_exceeds_the_diameter(rng):
    """A pair rotated by any wrong angle moves by at most twice its norm: the bound stops growing there."""
    x = rng.standard_normal((1, 32, 2, 16))
    bound = error_bound(x, FAR_CFG, FAR, dtype="float64", float32_angles=True)
    j0, j1 = FAR_CFG.pair_indices()
    r = np.hypot(x[..., j0], x[..., j1])
    rtol = 8 * 2.0**-53  # 8 unit roundoffs of float64, as error_bound's Notes derive
    np.testing.assert_allclose(bound[..., j0], r * (rtol + 2), rtol=1e-12)
    np.testing.assert_allclose(bound[..., j1], r * (rtol + 2), rtol=1e-12)


@pytest.mark.parametrize("garbage", ["zeros", "halved", "scaled by 1 + 1e-5", "features mixed across pairs"])
def test_far_positions_do_not_accept_outputs_of_the_wrong_norm(rng, garbage):
    """Beyond the float32-angle limit any rotation is allowed, but rotations keep each pair's norm."""
    x = make_x(rng, "float32", (1, 32, 2, 16))
    right = emulate.apply_rope(x, FAR_CFG, FAR)  # float32 angles, as transformers forms them
    assert compare(right, x, FAR_CFG, FAR, float32_angles=True).ok
    bad = {
        "zeros": np.zeros_like(right),
        "halved": right / 2,
        "scaled by 1 + 1e-5": right * np.float32(1 + 1e-5),  # 84 float32 ulps
        "features mixed across pairs": np.concatenate([np.roll(right[..., :8], 1, axis=-1), right[..., 8:]], -1),
    }[garbage]
    report = compare(bad, x, FAR_CFG, FAR, float32_angles=True)
    assert not report.ok, report
    assert "precision" not in kinds(report)
    assert report.worst["measure"] == "pair norm"


def test_far_positions_are_noted_where_float32_angles_carry_no_information(rng):
    x = make_x(rng, "float32", (1, 32, 2, 16))
    report = compare(emulate.apply_rope(x, FAR_CFG, FAR), x, FAR_CFG, FAR, float32_angles=True)
    note = next(n for n in report.notes if n.kind == "angle_limit")
    # pair i's float32 angle error bound |m theta_i| (2 i + |ln theta_i| + 4) 2**-24 reaches pi at:
    theta = 100.0 ** (-np.arange(8) / 8)
    start = np.pi / (theta * (2 * np.arange(8) + np.abs(np.log(theta)) + 4) * 2.0**-24)
    assert note.details["uninformative_from"] == pytest.approx(start.min())  # pair 0: pi 2**22
    assert note.details["all_uninformative_from"] == pytest.approx(start.max())
    assert note.details["pairs_checked_by_norm_only"] == 8
    assert f"from position {start.min():,.0f} on" in str(report)
    near = compare(emulate.apply_rope(x, FAR_CFG), x, FAR_CFG, float32_angles=True)
    assert "angle_limit" not in [n.kind for n in near.notes]


def test_empty_inputs_have_a_readable_report():
    empty = np.zeros((1, 0, 2, 16), np.float32)
    report = compare(empty, empty, FAR_CFG)
    assert report.ok and report.n_outside == 0  # nothing outside, as numpy.testing says of empty arrays
    assert str(report) == "RoPE: nothing to compare, shape (1, 0, 2, 16) holds no elements"
    assert json.loads(json.dumps(report.to_dict()))["worst"] == {}
    assert "queries: nothing to compare" in str(compare_qk(empty, empty, empty, empty, FAR_CFG))


def test_an_int_offset_beyond_int64_is_a_value_error(rng):
    x = make_x(rng, "float32", (1, 8, 2, 16))
    for offset in (2**63 - 1, -(2**63) - 1):
        with pytest.raises(ValueError, match=r"2\*\*63"):
            compare(x, x, FAR_CFG, offset)


# -- the report says what each number is ---------------------------------------------------------


def _verdict_ratio(actual, x, cfg, positions=None, **kw):
    """Each element's distance to its bound, recomputed: error over error_bound, and the pair-norm error over
    sqrt(2) (atol + rtol |pair|), as error_bound's Notes state (float32 output: rtol 8 u, atol 2 subnormals)."""
    exact = reference.complex_form(np.asarray(x, np.float64), cfg, positions)
    a = np.asarray(actual, np.float64)
    element = np.abs(a - exact) / error_bound(x, cfg, positions, dtype="float32", **kw)
    j0, j1 = cfg.pair_indices()
    r = np.hypot(exact[..., j0], exact[..., j1])
    pair = np.abs(np.hypot(a[..., j0], a[..., j1]) - r) / (np.sqrt(2) * (2 * 2.0**-149 + 8 * 2.0**-24 * r))
    norm = np.zeros_like(element)
    norm[..., j0], norm[..., j1] = pair, pair
    return np.maximum(element, norm)


@pytest.mark.parametrize("broken", [False, True])
def test_the_worst_element_is_worst_by_the_verdicts_measure(rng, broken):
    cfg = CONFIGS["half"]
    x = make_x(rng, "float32", (1, 40, 3, 64))
    y = numrope.apply_rope(x, cfg)
    if broken:
        y[0, 7, 1, 5] *= np.float32(1 + 1e-5)  # about 80 ulps: outside
    report = compare(y, x, cfg)
    ratio = _verdict_ratio(y, x, cfg)
    worst = np.unravel_index(np.argmax(ratio), ratio.shape)
    assert report.worst["index"] == tuple(int(i) for i in worst)
    assert report.worst["ratio"] == pytest.approx(ratio.max(), rel=1e-6)
    assert report.ok is (not broken) and report.ok == (ratio.max() <= 1)
    text = str(report)
    if broken:
        assert f"(the worst is {ratio.max():.3g} times its bound)" in text
        assert f"furthest outside its bound: element {tuple(int(i) for i in worst)}" in text
    else:
        assert f"(the closest to its bound reaches {ratio.max():.2g} of it)" in text
        assert f"closest to its bound: element {tuple(int(i) for i in worst)}" in text
        # the largest absolute error is another element's, and the report says it is not the verdict's measure
        assert (
            np.abs(np.asarray(y, np.float64) - reference.complex_form(np.asarray(x, np.float64), cfg)).max()
            > (report.worst["error"])
        )
    assert "largest errors over all elements, each also judged against its own bound:" in text
    assert "max abs error" not in text


def test_atol_is_printed_only_where_it_matters(rng):
    cfg = CONFIGS["half"]
    x = make_x(rng, "float32", (1, 8, 2, 64))
    assert "atol" not in str(compare(numrope.apply_rope(x, cfg), x, cfg))
    x[0, 3, 1, :] = 0  # a zero pair: its bound is atol alone
    report = compare(numrope.apply_rope(x, cfg), x, cfg)
    assert f"atol {2 * 2.0**-149:.3g} + |pair|" in str(report) and report.tolerance["atol_matters"]
    assert "atol 0.001 + |pair|" in str(compare(numrope.apply_rope(x, cfg), x, cfg, atol=1e-3))  # given: shown


@pytest.mark.parametrize(
    ("shape", "seq_axis", "index", "where"),
    [
        ((1, 10, 3, 16), -3, (0, 7, 2, 5), "batch 0, position 7, head 2, feature 5 (pair 5)"),
        ((2, 3, 10, 16), -2, (1, 2, 7, 5), "batch 1, position 7, head 2, feature 5 (pair 5)"),
        ((10, 3, 16), -3, (7, 2, 5), "position 7, head 2, feature 5 (pair 5)"),
        ((1, 10, 2, 3, 16), -4, (0, 7, 1, 2, 5), "batch 0, position 7, head (1, 2), feature 5 (pair 5)"),
        ((10, 16), -2, (7, 13), "position 7, feature 13 (pair 5)"),
    ],
)
def test_the_worst_element_is_located_readably(rng, shape, seq_axis, index, where):
    cfg = numrope.RopeConfig(head_dim=16)
    x = make_x(rng, "float64", shape)
    y = reference.complex_form(x, cfg, seq_axis=seq_axis)
    y[index] += 0.5
    text = str(compare(y, x, cfg, seq_axis=seq_axis))
    assert f"element {index}, {where}: actual" in text, text
    assert "(2,)" not in text


def test_the_positions_read_as_integers(rng):
    x = make_x(rng, "float32", (1, 8, 1, 16))
    positions = 2**26 + np.arange(8)
    text = str(compare(numrope.apply_rope(x, FAR_CFG, positions), x, FAR_CFG, positions))
    assert "position 67,108,86" in text and "67,108,864 .. 67,108,864" in text and "e+07" not in text


def test_the_qk_report_keeps_each_side_s_notes(rng):
    cfg = numrope.RopeConfig(head_dim=64, base=500000.0)
    q, k = make_x(rng, "float32", (1, 32, 2, 64)), make_x(rng, "float32", (1, 32, 2, 64))
    positions = np.arange(32) * 4000
    report = compare_qk(
        emulate.apply_rope(q, cfg, positions),
        emulate.apply_rope(k, cfg, positions),
        q,
        k,
        cfg,
        positions,
        float32_angles=True,
    )
    assert report.ok and [n.kind for n in report.q.notes] == ["precision"]
    assert str(report).count("    - precision: within float32-angle precision") == 2

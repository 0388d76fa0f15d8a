"""The scaling variants against their formulas, worked by hand, and the published figures.

Expected values are derived in the comments from the papers' formulas (never read off numrope's
output). Frequencies are compared in float64; the formulas involve a handful of float64 operations
on numbers of size ~1, so a relative error of a few ulps (``REL``) is the derived bound.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numrope
from numrope import reference
from numrope.variants import NTK, DynamicNTK, Linear, Llama3, LongRoPE, NTKAware, Proportional, RopeScaling, YaRN

EPS64 = np.finfo(np.float64).eps
REL = 16 * EPS64  # a few float64 roundings in each formula, with a safety factor


def unscaled(head_dim, base, rotary_dim=None):
    d = rotary_dim or head_dim
    return base ** (-np.arange(0, d, 2, dtype=np.float64) / d)


def assert_rel(actual, expected, rel=REL):
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    err = np.abs(actual - expected) / np.abs(expected)
    assert err.max(initial=0.0) <= rel, f"relative error {err.max():.3g} > {rel:.3g} at {np.argmax(err)}"


# -- Llama 3 ----------------------------------------------------------------------------------

LLAMA31 = Llama3(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=8192)


def test_llama31_8b_has_29_unchanged_29_divided_6_smoothed():
    # Llama 3.1 8B: base 500000, head_dim 128 -> 64 pairs, wavelength w_i = 2 pi 500000**(i/64).
    # Unchanged where w_i < 8192/4 = 2048: i < 64 ln(2048/2pi)/ln(500000) = 64 * 5.7868/13.1224
    # = 28.22, i.e. i = 0..28 (29 pairs). Divided by 8 where w_i > 8192: i > 64 ln(8192/2pi)/ln(500000)
    # = 64 * 7.1731/13.1224 = 34.98, i.e. i = 35..63 (29 pairs). Smoothed: i = 29..34 (6 pairs).
    cfg = numrope.RopeConfig(head_dim=128, base=500000.0, scaling=LLAMA31)
    ratio = cfg.inv_freq() / unscaled(128, 500000.0)
    unchanged = np.flatnonzero(ratio == 1.0)
    divided = np.flatnonzero(np.abs(ratio - 1 / 8) <= REL)
    smoothed = np.flatnonzero((ratio < 1.0) & (ratio > 1 / 8 + REL))
    assert unchanged.tolist() == list(range(29))
    assert divided.tolist() == list(range(35, 64))
    assert smoothed.tolist() == list(range(29, 35))


def test_llama3_smoothing_formula_at_one_pair():
    # Pair 30 of Llama 3.1: w = 2 pi 500000**(30/64); a = (8192/w - 1)/(4 - 1);
    # theta' = (1 - a) theta/8 + a theta.
    theta = 500000.0 ** (-30 / 64)
    w = 2 * math.pi / theta
    a = (8192 / w - 1) / 3
    cfg = numrope.RopeConfig(head_dim=128, base=500000.0, scaling=LLAMA31)
    assert 0 < a < 1
    assert_rel(cfg.inv_freq()[30], (1 - a) * theta / 8 + a * theta)


def test_llama3_is_continuous_at_band_edges():
    # At w = L0/high the smoothing weight is 1 (unchanged), at w = L0/low it is 0 (divided): pick a
    # base that puts a pair exactly on an edge, and one just inside.
    scaling = Llama3(factor=4.0, low_freq_factor=1.0, high_freq_factor=2.0, original_max_position_embeddings=64)
    theta = np.array([2 * math.pi / 32, 2 * math.pi / 64, 2 * math.pi / 48])  # w = 32 (= 64/2), 64 (= 64/1), 48
    cfg = numrope.RopeConfig(head_dim=6)
    got = scaling.inv_freq(theta, cfg, None)
    assert_rel(got[:2], [theta[0], theta[1] / 4])
    a = (64 / 48 - 1) / (2 - 1)  # = 1/3
    assert_rel(got[2], (1 - a) * theta[2] / 4 + a * theta[2])


# -- YaRN -------------------------------------------------------------------------------------


def test_qwen25_yarn_factor_4_attention_factor():
    # YaRN's temperature, eq. 22 of the paper: sqrt(1/t) = 0.1 ln(s) + 1 = 0.1 * 1.3862944 + 1.
    yarn = YaRN(factor=4.0, original_max_position_embeddings=32768)
    cfg = numrope.RopeConfig(head_dim=128, base=1e6, scaling=yarn)
    assert round(cfg.attention_scaling, 5) == 1.13863
    assert cfg.attention_scaling == pytest.approx(0.1 * math.log(4) + 1, rel=4 * EPS64)


def test_deepseek_v3_mscale_equal_to_mscale_all_dim_gives_one():
    # DeepSeek: (0.1 * mscale * ln 40 + 1) / (0.1 * mscale_all_dim * ln 40 + 1), equal terms -> 1.
    for m in (1.0, 0.707):  # V3 and V2
        yarn = YaRN(factor=40, original_max_position_embeddings=4096, mscale=m, mscale_all_dim=m)
        assert numrope.RopeConfig(head_dim=64, scaling=yarn).attention_scaling == 1.0


def test_deepseek_mscale_ratio_and_fallbacks():
    ln40 = math.log(40)
    yarn = YaRN(factor=40, original_max_position_embeddings=4096, mscale=1.0, mscale_all_dim=0.707)
    cfg = numrope.RopeConfig(head_dim=64, scaling=yarn)
    assert cfg.attention_scaling == pytest.approx((0.1 * ln40 + 1) / (0.0707 * ln40 + 1), rel=4 * EPS64)
    # mscale alone (or mscale_all_dim = 0) is ignored, as in transformers: 0.1 ln s + 1.
    for kw in ({"mscale": 0.707}, {"mscale": 0.707, "mscale_all_dim": 0.0}):
        y = YaRN(factor=40, original_max_position_embeddings=4096, **kw)
        assert numrope.RopeConfig(head_dim=64, scaling=y).attention_scaling == pytest.approx(0.1 * ln40 + 1)
    # an explicit attention_factor wins; factor <= 1 gives no temperature
    y = YaRN(factor=40, original_max_position_embeddings=4096, attention_scaling=0.5, mscale=1, mscale_all_dim=2)
    assert numrope.RopeConfig(head_dim=64, scaling=y).attention_scaling == 0.5
    y = YaRN(factor=1.0, original_max_position_embeddings=4096)
    assert numrope.RopeConfig(head_dim=64, scaling=y).attention_scaling == 1.0


def gpt_oss_bounds():
    # gpt-oss: d = 64, base 150000, L0 4096, beta_fast 32, beta_slow 1, no truncation.
    # c(r) = 64 ln(4096 / (2 pi r)) / (2 ln 150000)
    denom = 2 * math.log(150000.0)
    return 64 * math.log(4096 / (2 * math.pi * 32)) / denom, 64 * math.log(4096 / (2 * math.pi)) / denom


def test_gpt_oss_yarn_without_truncation():
    lo, hi = gpt_oss_bounds()  # 8.09..., 17.40...
    assert 8 < lo < 9 and 17 < hi < 18
    yarn = YaRN(factor=32.0, original_max_position_embeddings=4096, truncate=False)
    assert yarn.correction_range(64, 150000.0) == pytest.approx((lo, hi), rel=REL)
    cfg = numrope.RopeConfig(head_dim=64, base=150000.0, scaling=yarn)
    theta = unscaled(64, 150000.0)
    got = cfg.inv_freq()
    assert (got[:9] == theta[:9]).all()  # i <= 8 < lo: ramp 0, unchanged
    assert_rel(got[18:], theta[18:] / 32)  # i >= 18 > hi: divided by s
    g = (12 - lo) / (hi - lo)  # pair 12 is on the ramp
    assert_rel(got[12], theta[12] * ((1 - g) + g / 32))
    assert cfg.attention_scaling == pytest.approx(0.1 * math.log(32) + 1, rel=4 * EPS64)  # 1.3466


def test_yarn_truncation_rounds_bounds_outwards():
    lo, hi = gpt_oss_bounds()
    yarn = YaRN(factor=32.0, original_max_position_embeddings=4096)  # truncate=True
    assert yarn.correction_range(64, 150000.0) == (math.floor(lo), math.ceil(hi)) == (8, 18)
    ramp = yarn.ramp(64, 150000.0)
    assert_rel(ramp[9:18], (np.arange(9, 18) - 8) / 10)
    assert (ramp[:9] == 0).all() and (ramp[18:] == 1).all()


def test_yarn_bounds_are_clamped_to_the_pairs():
    # L0 tiny: c(beta_fast) < 0 -> 0. L0 huge: c(beta_slow) > d - 1 -> d - 1.
    small = YaRN(factor=2.0, original_max_position_embeddings=8)
    assert small.correction_range(16, 10000.0)[0] == 0
    huge = YaRN(factor=2.0, original_max_position_embeddings=10**12)
    assert huge.correction_range(16, 10000.0)[1] == 15


def test_yarn_equal_bounds_do_not_divide_by_zero():
    # beta_fast == beta_slow without truncation: lo == hi, nudged by 0.001 -> a step at lo.
    yarn = YaRN(factor=4.0, original_max_position_embeddings=4096, beta_fast=8, beta_slow=8, truncate=False)
    lo, hi = yarn.correction_range(64, 10000.0)
    assert lo == hi
    ramp = yarn.ramp(64, 10000.0)
    assert np.isfinite(ramp).all()
    i = np.arange(32)
    assert (ramp[i < lo] == 0).all() and (ramp[i >= lo + 0.001] == 1).all()
    # Truncated and clamped to the same whole pair: L0 = 6 < 2 pi, so c(1) = 8 ln(6 / 2pi) / (2 ln 1e4)
    # = -0.020 -> ceil 0, and c(32) < 0 -> 0. Without the nudge pair 0 would be 0/0.
    both_zero = YaRN(factor=4.0, original_max_position_embeddings=6)
    assert both_zero.correction_range(8, 10000.0) == (0, 0)
    assert both_zero.ramp(8, 10000.0).tolist() == [0.0, 1.0, 1.0, 1.0]


def test_yarn_attention_factor_is_folded_into_cos_and_sin():
    yarn = YaRN(factor=4.0, original_max_position_embeddings=64)
    cfg = numrope.RopeConfig(head_dim=16, scaling=yarn)
    m = np.arange(100, dtype=np.float64)
    cos, sin = numrope.rope_cache(cfg, 100, dtype=np.float64)
    angle = m[:, None] * cfg.inv_freq()
    scale = 0.1 * math.log(4) + 1
    bound = scale * (2 * EPS64 + float(angle.max()) * EPS64)  # the reference's float64 angle rounding
    assert np.abs(cos - scale * np.cos(angle)).max() <= bound
    assert np.abs(sin - scale * np.sin(angle)).max() <= bound


# -- Linear, NTK, dynamic NTK -----------------------------------------------------------------


def test_linear_divides_every_frequency():
    cfg = numrope.RopeConfig(head_dim=64, rotary_dim=32, scaling=Linear(factor=8.0))
    assert_rel(cfg.inv_freq(), unscaled(64, 10000.0, 32) / 8)


def test_ntk_aware_changes_the_base():
    # base' = 10000 * 4**(32/30); theta_i' = theta_i * 4**(-2i/30): 1 at i = 0, 1/4 at i = 15.
    cfg = numrope.RopeConfig(head_dim=32, scaling=NTKAware(alpha=4.0))
    theta = unscaled(32, 10000.0)
    i = np.arange(16)
    assert_rel(cfg.inv_freq(), theta * 4.0 ** (-2 * i / 30))
    assert cfg.inv_freq()[0] == 1.0
    assert_rel(cfg.inv_freq()[-1], theta[-1] / 4)


def test_ntk_is_vllms_fixed_ntk():
    # vLLM's NTKScalingRotaryEmbedding: base' = base s, then every frequency / s**(2/d):
    # (base s)**(-2i/d) / s**(2/d) = theta_i s**(-(2i + 2)/d). d = 32, s = 4: pair 0 is 4**(-1/16),
    # pair 15 exactly 1/4.
    cfg = numrope.RopeConfig(head_dim=32, scaling=NTK(factor=4.0))
    theta = unscaled(32, 10000.0)
    i = np.arange(16)
    assert_rel(cfg.inv_freq(), (10000.0 * 4.0) ** (-2 * i / 32) / 4.0 ** (2 / 32))
    assert_rel(cfg.inv_freq()[0], 4.0 ** (-1 / 16))
    assert_rel(cfg.inv_freq()[-1], theta[-1] / 4)


def test_ntk_mixed_b():
    # mixed_b = b: theta_i / lambda_i, lambda_i = exp(a (i+1)**b), a = ln s / (d/2)**b, the base kept.
    # d = 16, s = 8, b = 0.5: a = ln 8 / sqrt(8); lambda_7 = exp(ln 8) = 8 (the last pair / s).
    s, b, d = 8.0, 0.5, 16
    cfg = numrope.RopeConfig(head_dim=d, scaling=NTK(factor=s, mixed_b=b))
    k = np.arange(1, 9)
    lam = np.exp(math.log(s) / math.sqrt(8) * np.sqrt(k))
    assert_rel(cfg.inv_freq(), unscaled(d, 10000.0) / lam)
    assert_rel(cfg.inv_freq()[-1], unscaled(d, 10000.0)[-1] / 8)
    # b = 1 is the unmixed formula: lambda_i = s**((i + 1)/(d/2))
    assert_rel(
        numrope.RopeConfig(head_dim=d, scaling=NTK(s, mixed_b=1.0)).inv_freq(),
        numrope.RopeConfig(head_dim=d, scaling=NTK(s)).inv_freq(),
    )


def test_dynamic_ntk_depends_on_sequence_length():
    dyn = DynamicNTK(factor=2.0, max_position_embeddings=1024)
    cfg = numrope.RopeConfig(head_dim=32, scaling=dyn)
    theta = unscaled(32, 10000.0)
    assert cfg.depends_on_seq_len
    for seq_len in (None, 1, 1024):  # up to the trained length: plain RoPE, bit for bit
        assert (cfg.inv_freq(seq_len) == theta).all()
    # L = 2048: base * (2 * 2048/1024 - 1)**(32/30) = base * 3**(16/15): last pair divided by 3.
    got = cfg.inv_freq(2048)
    assert_rel(got, theta * 3.0 ** (-np.arange(16) / 15))
    assert_rel(got[-1], theta[-1] / 3)


def test_dynamic_ntk_default_seq_len_is_largest_position_plus_one(rng):
    cfg = numrope.RopeConfig(head_dim=16, scaling=DynamicNTK(factor=4.0, max_position_embeddings=64))
    positions = np.array([0, 5, 199])
    cos, _ = numrope.rope_cache(cfg, positions, dtype=np.float64)
    cos200, _ = numrope.rope_cache(cfg, positions, dtype=np.float64, seq_len=200)
    cos64, _ = numrope.rope_cache(cfg, positions, dtype=np.float64, seq_len=64)
    assert (cos == cos200).all() and not np.allclose(cos, cos64)
    x = rng.standard_normal((1, 3, 2, 16))
    got = numrope.apply_rope(x, cfg, positions)
    expected = reference.complex_form(x, cfg, positions, seq_len=200)
    assert np.abs(got - expected).max() <= 8 * EPS64 * 199 * np.abs(x).max()


# -- LongRoPE ---------------------------------------------------------------------------------

SHORT = (1.0, 1.5, 2.0, 3.0)
LONG = (1.0, 4.0, 16.0, 64.0)


def test_longrope_switches_factors_above_original_length():
    lr = LongRoPE(short_factor=SHORT, long_factor=LONG, original_max_position_embeddings=4096, factor=32.0)
    cfg = numrope.RopeConfig(head_dim=8, scaling=lr)
    theta = unscaled(8, 10000.0)
    for seq_len in (None, 1, 4096):
        assert_rel(cfg.inv_freq(seq_len), theta / np.array(SHORT))
    for seq_len in (4097, 131072):
        assert_rel(cfg.inv_freq(seq_len), theta / np.array(LONG))


def test_phi3_attention_factor():
    # Phi-3.5-mini: s = 131072 / 4096 = 32 = 2**5 and L0 = 4096 = 2**12, so ln s / ln L0 = 5/12 and
    # the factor is sqrt(17/12) = 1.190238.
    lr = LongRoPE(
        short_factor=SHORT, long_factor=LONG, original_max_position_embeddings=4096, max_position_embeddings=131072
    )
    cfg = numrope.RopeConfig(head_dim=8, scaling=lr)
    assert cfg.attention_scaling == pytest.approx(math.sqrt(17 / 12), rel=4 * EPS64)
    assert round(cfg.attention_scaling, 6) == 1.190238


def test_longrope_attention_factor_sources():
    kw = {"short_factor": SHORT, "long_factor": LONG, "original_max_position_embeddings": 4096}
    # factor wins over max_position_embeddings; an explicit attention_factor wins over both
    a = LongRoPE(factor=16.0, max_position_embeddings=131072, **kw).attention_factor(None)
    assert a == pytest.approx(math.sqrt(1 + 4 / 12), rel=4 * EPS64)
    assert LongRoPE(attention_scaling=1.25, factor=16.0, **kw).attention_factor(None) == 1.25
    assert LongRoPE(factor=1.0, **kw).attention_factor(None) == 1.0
    assert LongRoPE(max_position_embeddings=2048, **kw).attention_factor(None) == 1.0
    with pytest.raises(ValueError, match=r"factor, attention_factor .* or max_position_embeddings"):
        LongRoPE(**kw)


def test_longrope_factor_lists_must_match_rotary_dim():
    lr = LongRoPE(short_factor=SHORT, long_factor=LONG[:3], original_max_position_embeddings=64, factor=2.0)
    with pytest.raises(ValueError, match=r"long_factor must have one entry per rotating pair, .* = 4, got 3"):
        numrope.RopeConfig(head_dim=8, scaling=lr)
    with pytest.raises(ValueError, match=r"short_factor .* = 8, got 4"):
        numrope.RopeConfig(head_dim=16, scaling=LongRoPE(SHORT, LONG, 64, factor=2.0))


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: Linear(factor=0.0), ValueError, "factor must be positive, got 0"),
        (lambda: Linear(factor=-2), ValueError, "factor must be positive, got -2"),
        (lambda: Linear(factor=float("nan")), ValueError, "factor must be finite, got nan"),
        (lambda: Linear(factor=True), TypeError, "factor must be a real number, got bool"),
        (lambda: Linear(factor="2"), TypeError, "factor must be a real number, got str"),
        (lambda: NTK(factor=float("inf")), ValueError, "factor must be finite"),
        (lambda: DynamicNTK(factor=2.0, max_position_embeddings=0), ValueError, "max_position_embeddings must be"),
        (lambda: DynamicNTK(factor=2.0, max_position_embeddings=2048.5), ValueError, "whole number, got 2048.5"),
        (lambda: YaRN(factor=4.0, original_max_position_embeddings=-1), ValueError, "original_max_position_emb"),
        (lambda: YaRN(factor=4.0, original_max_position_embeddings="4k"), TypeError, "must be an int, got str"),
        (
            lambda: YaRN(factor=4.0, original_max_position_embeddings=64, beta_fast=1, beta_slow=32),
            ValueError,
            r"beta_fast \(1\) must be at least beta_slow \(32\)",
        ),
        (lambda: YaRN(factor=4.0, original_max_position_embeddings=64, beta_slow=0), ValueError, "beta_slow must be"),
        (lambda: YaRN(factor=4.0, original_max_position_embeddings=64, truncate="no"), TypeError, "truncate must be"),
        (
            lambda: YaRN(factor=4.0, original_max_position_embeddings=64, attention_scaling=-1.0),
            ValueError,
            r"attention_scaling \(attention_factor\) must be positive",
        ),
        (lambda: YaRN(factor=4.0, original_max_position_embeddings=64, mscale=-0.1), ValueError, "mscale must be"),
        (lambda: LongRoPE((1.0, -2.0), (1.0, 1.0), 64, factor=2.0), ValueError, r"short_factor\[1\] must be positive"),
        (lambda: LongRoPE(3.0, (1.0,), 64, factor=2.0), TypeError, "short_factor must be a list of numbers"),
        (lambda: Llama3(8.0, 4.0, 1.0, 8192), ValueError, r"high_freq_factor \(1\) must be at least low_freq"),
        (lambda: NTKAware(alpha=0.0), ValueError, "alpha must be positive"),
        (lambda: NTK(2.0, mixed_b=float("nan")), ValueError, "mixed_b must be finite"),
        (lambda: Proportional(partial_rotary_factor=1.5), ValueError, r"partial_rotary_factor must be in \(0, 1\]"),
        (
            lambda: YaRN(4.0, 64, apply_yarn_scaling=False, mscale=1.0),
            ValueError,
            "apply_yarn_scaling=False leaves attn_factor",
        ),
        (
            lambda: LongRoPE((1.0,), (1.0,), 64, factor=2.0, short_mscale=1.0, long_mscale=2.0),
            NotImplementedError,
            "different attention factors for short and long sequences",
        ),
        (lambda: Llama3(0.0, 1.0, 4.0, 8192), ValueError, "factor must be positive"),
    ],
)
def test_bad_fields_raise_naming_the_field(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_ntk_variants_need_more_than_one_pair():
    for scaling in (NTKAware(alpha=2.0), DynamicNTK(factor=2.0, max_position_embeddings=8)):
        with pytest.raises(ValueError, match="needs rotary_dim > 2, got 2"):
            numrope.RopeConfig(head_dim=4, rotary_dim=2, scaling=scaling)


def test_variants_are_frozen_hashable_and_compare_by_value():
    a = LongRoPE([1.0, 2.0], [3.0, 4.0], 64, factor=2.0)
    b = LongRoPE((1, 2), (3, 4), 64.0, factor=2)
    assert a == b and hash(a) == hash(b)
    assert numrope.RopeConfig(head_dim=4, scaling=a) == numrope.RopeConfig(head_dim=4, scaling=b)
    with pytest.raises(AttributeError):
        a.factor = 3.0


def test_inv_freq_is_a_fresh_array():
    cfg = numrope.RopeConfig(head_dim=16, scaling=YaRN(factor=2.0, original_max_position_embeddings=64))
    first = cfg.inv_freq()
    first[:] = 0
    assert (cfg.inv_freq() > 0).all()


# -- properties shared by every variant -------------------------------------------------------


@st.composite
def variants(draw):
    d = draw(st.sampled_from([4, 8, 16, 64, 128]))
    base = draw(st.sampled_from([100.0, 10000.0, 500000.0, 1e6]))
    factor = draw(st.floats(1.0, 64.0))
    l0 = draw(st.sampled_from([16, 512, 4096, 32768]))
    kind = draw(st.sampled_from(["linear", "ntk", "dynamic", "yarn", "longrope", "llama3"]))
    if kind == "linear":
        scaling = Linear(factor)
    elif kind == "ntk":
        scaling = NTK(factor)
    elif kind == "dynamic":
        scaling = DynamicNTK(factor, l0)
    elif kind == "yarn":
        fast = draw(st.floats(1.0, 64.0))
        slow = draw(st.floats(0.1, fast))
        scaling = YaRN(factor, l0, beta_fast=fast, beta_slow=slow, truncate=draw(st.booleans()))
    elif kind == "longrope":
        # searched factors grow with the pair index (lower frequencies interpolated more)
        lists = [sorted(draw(st.lists(st.floats(1.0, factor), min_size=d // 2, max_size=d // 2))) for _ in "sl"]
        scaling = LongRoPE(lists[0], lists[1], l0, factor=factor)
    else:
        low = draw(st.floats(0.5, 4.0))
        scaling = Llama3(factor, low, low * draw(st.floats(1.1, 8.0)), l0)
    seq_len = draw(st.sampled_from([None, 1, l0, 2 * l0, 64 * l0]))
    return numrope.RopeConfig(head_dim=d, base=base, scaling=scaling), factor, seq_len


@settings(deadline=None, max_examples=150)
@given(variants())
def test_scaled_frequencies_are_decreasing_and_between_theta_over_factor_and_theta(case):
    # With factor >= 1 every variant slows each pair down by at most its factor (dynamic NTK: by
    # at most its scale s = a L/L0 - (a - 1)) and keeps the frequencies in decreasing order.
    cfg, factor, seq_len = case
    theta = unscaled(cfg.head_dim, cfg.base)
    got = cfg.inv_freq(seq_len)
    assert got.dtype == np.float64 and got.shape == theta.shape
    assert np.isfinite(got).all()
    slack = 1 + REL
    if isinstance(cfg.scaling, DynamicNTK):
        length = max(seq_len or 0, cfg.scaling.max_position_embeddings)
        factor = factor * length / cfg.scaling.max_position_embeddings - (factor - 1)
    assert (got <= theta * slack).all()
    assert (got * factor * slack >= theta).all()
    assert (np.diff(got) < 0).all()
    assert cfg.attention_scaling >= 1.0


def test_every_variant_is_a_rope_scaling():
    for cls in numrope.variants.VARIANTS.values():
        assert issubclass(cls, RopeScaling) and cls.rope_type
    assert set(numrope.variants.VARIANTS) == {"linear", "ntk", "dynamic", "yarn", "longrope", "llama3", "proportional"}
    assert issubclass(numrope.variants.NTKAware, RopeScaling)


# -- Llama 4, Gemma 4 and vLLM's keys --------------------------------------------------------------


def test_llama3_with_equal_low_and_high_factors_has_no_smoothed_band():
    # Llama 4 Scout: factor 16, low = high = 1, L0 = 8192: kept where w < 8192, divided where w > 8192.
    cfg = numrope.RopeConfig(head_dim=128, base=500000.0, scaling=Llama3(16.0, 1.0, 1.0, 8192))
    theta = unscaled(128, 500000.0)
    wavelength = 2 * math.pi / theta
    expected = np.where(wavelength > 8192, theta / 16, theta)
    assert_rel(cfg.inv_freq(), expected)
    assert 0 < (wavelength > 8192).sum() < 64


def test_proportional_rotates_the_first_pairs_with_exponents_over_the_head():
    # Gemma 4 full attention: head 512, partial_rotary_factor 0.25 -> floor(0.25 * 512 / 2) = 64 pairs turn,
    # theta_i = 1e6**(-2i / 512) (not 2i / 128); the 192 others have frequency 0.
    cfg = numrope.RopeConfig(head_dim=512, base=1e6, scaling=Proportional(partial_rotary_factor=0.25))
    theta = cfg.inv_freq()
    assert_rel(theta[:64], 1e6 ** (-2 * np.arange(64) / 512))
    assert (theta[64:] == 0).all()
    # factor divides every frequency; 0.5 of 10 features is 2.5 pairs, floored to 2
    assert_rel(numrope.RopeConfig(10, scaling=Proportional(0.5, factor=4.0)).inv_freq()[:2], unscaled(10, 1e4)[:2] / 4)
    assert (numrope.RopeConfig(10, scaling=Proportional(0.5)).inv_freq()[2:] == 0).all()
    # the pairs that do not turn pass through exactly
    x = np.random.default_rng(0).standard_normal((1, 5, 2, 512))
    out = numrope.apply_rope(x, cfg, np.arange(5) * 1000)
    j0, j1 = cfg.pair_indices()
    assert (out[..., j0[64:]] == x[..., j0[64:]]).all() and (out[..., j1[64:]] == x[..., j1[64:]]).all()


def test_yarn_vllm_keys():
    # vLLM: theta_i' = theta_i e (1 - g_i) + theta_i / s (1 - e (1 - g_i)), attention factor
    # attn_factor (0.1 ln s + 1), or attn_factor alone without apply_yarn_scaling.
    base = dict(factor=4.0, original_max_position_embeddings=2048)
    plain = numrope.RopeConfig(16, scaling=YaRN(**base))
    g = YaRN(**base).ramp(16, 10000.0)
    theta = unscaled(16, 10000.0)
    e = 0.5
    cfg = numrope.RopeConfig(16, scaling=YaRN(**base, extrapolation_factor=e))
    assert_rel(cfg.inv_freq(), theta * e * (1 - g) + theta / 4 * (1 - e * (1 - g)))
    assert_rel(numrope.RopeConfig(16, scaling=YaRN(**base, extrapolation_factor=1.0)).inv_freq(), plain.inv_freq())
    assert numrope.RopeConfig(16, scaling=YaRN(**base, attn_factor=2.0)).attention_scaling == pytest.approx(
        2 * (0.1 * math.log(4) + 1), rel=REL
    )
    assert (
        numrope.RopeConfig(16, scaling=YaRN(**base, attn_factor=0.5, apply_yarn_scaling=False)).attention_scaling == 0.5
    )


def test_longrope_vllm_mscales():
    # one mscale for both regimes is the attention factor; either one alone must match the other's default
    lr = LongRoPE(SHORT, LONG, 64, factor=2.0, short_mscale=1.25, long_mscale=1.25)
    assert numrope.RopeConfig(8, scaling=lr).attention_scaling == 1.25
    default = math.sqrt(1 + math.log(2.0) / math.log(64))
    assert (
        numrope.RopeConfig(8, scaling=LongRoPE(SHORT, LONG, 64, factor=2.0, long_mscale=default)).attention_scaling
        == default
    )
    with pytest.raises(NotImplementedError, match=r"short_mscale=None, long_mscale=1\.5"):
        LongRoPE(SHORT, LONG, 64, factor=2.0, long_mscale=1.5)

"""The relative-position identity, the rotation matrices and the long-term decay (numrope.checks.identity)."""

import cmath
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numrope
from numrope.checks import configs, decay, identity, matrices, report
from numrope.reference import vectorised_numpy

SMALL = configs.standard_configs(head_dim=32, seq_len=4096)
SMALL_IDS = [report._describe(c, n) for c, n in SMALL]


def _plain_rotation(phi):
    return np.array([[math.cos(phi), -math.sin(phi)], [math.sin(phi), math.cos(phi)]])


# --- rotation matrices --------------------------------------------------------------------------


def test_rotation_matrix_interleaved_is_eq_15_of_the_paper():
    # RoFormer eq. 15 written out by hand with math.cos/math.sin, pairs (0, 1), (2, 3), then identity
    cfg = numrope.RopeConfig(head_dim=6, rotary_dim=4, layout="interleaved", base=100.0)
    m = 3.0
    want = np.eye(6)
    want[0:2, 0:2] = _plain_rotation(m * 1.0)
    want[2:4, 2:4] = _plain_rotation(m * 100.0 ** (-2 / 4))
    np.testing.assert_allclose(matrices.exact_rotation_matrix(cfg, m), want, rtol=0, atol=4e-16)


def test_rotation_matrix_half_layout_pairs_i_with_i_plus_half():
    cfg = numrope.RopeConfig(head_dim=4, layout="half")
    r = matrices.exact_rotation_matrix(cfg, 2)
    theta = cfg.inv_freq()
    for i, (j0, j1) in enumerate(((0, 2), (1, 3))):
        block = r[np.ix_([j0, j1], [j0, j1])]
        np.testing.assert_allclose(block, _plain_rotation(2 * theta[i]), rtol=0, atol=4e-16)
    assert np.count_nonzero(r) == 8


def test_generator_is_skew_symmetric_and_exponentiates_to_the_rotation():
    import scipy.linalg

    cfg = numrope.RopeConfig(head_dim=10, rotary_dim=8, layout="half")
    a = matrices.generator(cfg)
    np.testing.assert_array_equal(a, -a.T)
    assert not a[8:].any() and not a[:, 8:].any()
    np.testing.assert_allclose(scipy.linalg.expm(0.5 * a), matrices.exact_rotation_matrix(cfg, 0.5), rtol=0, atol=1e-15)


@pytest.mark.parametrize(("cfg", "seq_len"), SMALL, ids=SMALL_IDS)
def test_check_rotation_holds_for_every_layout_and_variant(cfg, seq_len):
    report = identity.check_rotation(cfg, (0, 1, 5, 300, 4095, -77), seq_len=seq_len)
    assert report.passed, str(report)


def test_check_rotation_with_a_long_head():
    report = identity.check_rotation(numrope.RopeConfig(head_dim=128, base=500000.0), (0, 3, 1000, 2**20))
    assert report.passed, str(report)


@settings(deadline=None, max_examples=25)
@given(st.lists(st.integers(-(2**24), 2**24), min_size=2, max_size=3), st.sampled_from(["half", "interleaved"]))
def test_group_property_and_orthogonality_for_any_positions(positions, layout):
    cfg = numrope.RopeConfig(head_dim=8, layout=layout)
    assert identity.check_rotation(cfg, positions).passed


def test_check_rotation_fails_when_apply_rope_rotates_the_wrong_way(monkeypatch):
    real = numrope.apply_rope

    def backwards(x, cfg, positions=None, **kw):
        return real(x, cfg, positions, inverse=True, **kw)

    monkeypatch.setattr(numrope, "apply_rope", backwards)
    report = identity.check_rotation(numrope.RopeConfig(head_dim=8), (0, 3))
    failed = {c.name for c in report.comparisons if not c.passed}
    assert failed == {"apply_rope(x, m) = a R_m x"}


def test_check_rotation_wants_pass_through_features_exact(monkeypatch):
    real = numrope.apply_rope

    def leaky(x, cfg, positions=None, **kw):  # one ulp on the features that must pass through
        y = real(x, cfg, positions, **kw)
        y[..., cfg.rotary_dim :] *= 1 + 2.0**-52
        return y

    monkeypatch.setattr(numrope, "apply_rope", leaky)
    report = identity.check_rotation(numrope.RopeConfig(head_dim=8, rotary_dim=4), (0, 3))
    assert not report.passed


def test_rotation_matrix_bad_input():
    cfg = numrope.RopeConfig(head_dim=4)
    with pytest.raises(ValueError, match="method"):
        matrices.exact_rotation_matrix(cfg, 1, method="eig")
    with pytest.raises(ValueError, match="finite"):
        matrices.exact_rotation_matrix(cfg, float("nan"))
    with pytest.raises(ValueError, match="2\\*\\*52"):
        matrices.exact_rotation_matrix(cfg, 2.0**60)
    with pytest.raises(TypeError, match="real number"):
        matrices.exact_rotation_matrix(cfg, "3")
    with pytest.raises(TypeError, match="RopeConfig"):
        matrices.exact_rotation_matrix({"head_dim": 4}, 1)
    with pytest.raises(ValueError, match="empty"):
        identity.check_rotation(cfg, ())


def test_exact_angle_cos_sin_beats_the_rounded_product():
    # m * theta rounded to float64 is off by up to |m theta| 2**-53; the double-double angle is not
    mpmath = pytest.importorskip("mpmath")
    m, theta = 2.0**31 - 1, 0.7
    with mpmath.workprec(256):
        exact = float(mpmath.cos(mpmath.mpf(m) * mpmath.mpf(theta)))
    c, _ = matrices.exact_angle_cos_sin(m, theta)
    assert abs(c - exact) <= matrices.cos_sin_error(m * theta)
    assert abs(np.cos(m * theta) - exact) > 100 * matrices.cos_sin_error(m * theta)


# --- the relative-position identity ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize(("cfg", "seq_len"), SMALL, ids=SMALL_IDS)
def test_check_relative_holds_for_every_layout_variant_and_dtype(cfg, seq_len, dtype):
    report = identity.check_relative(cfg, dtype=dtype, seq_len=seq_len, max_position=4096, n_vectors=8)
    assert report.passed, str(report)
    assert [c.name for c in report.comparisons] == [
        "closed form g(q, k, m-n)",
        "matrix form q^T R_{n-m} k",
        "spread over pairs with equal m-n",
    ]


def test_check_relative_llama_sized_long_range():
    cfg = numrope.RopeConfig(head_dim=128, base=500000.0)
    assert identity.check_relative(cfg, max_position=2**20, seed=3).passed


@pytest.mark.parametrize(("cfg", "seq_len"), SMALL[:4], ids=SMALL_IDS[:4])
def test_check_relative_rejects_the_sinusoidal_absolute_encoding(cfg, seq_len):
    report = identity.check_relative(cfg, seq_len=seq_len, encoding=identity.sinusoidal_absolute)
    assert not any(c.passed for c in report.comparisons), str(report)
    assert "FAILS" in str(report)
    # not by a hair: the absolute encoding misses by more than a tenth of the score's scale
    assert min(c.max_rel_error for c in report.comparisons) > 0.1


def test_check_relative_rejects_a_relative_encoding_with_the_wrong_pairs():
    # interleaved pairs applied to a half-layout configuration: still relative (no spread), but
    # not the closed form of this configuration
    cfg = numrope.RopeConfig(head_dim=16, layout="half")
    wrong = numrope.RopeConfig(head_dim=16, layout="interleaved")
    report = identity.check_relative(cfg, encoding=lambda x, p: numrope.apply_rope(x, wrong, p))
    assert [c.passed for c in report.comparisons] == [False, False, True]


def test_check_relative_rejects_float32_angles_at_float64_precision():
    # the usual float32-angle form is relative in exact arithmetic but loses m theta 2**-24 radians
    cfg = numrope.RopeConfig(head_dim=32)

    def float32_angles(x, p):
        return np.stack([vectorised_numpy(x[i : i + 1], cfg, p[i]) for i in range(x.shape[0])])[:, 0]

    report = identity.check_relative(cfg, encoding=float32_angles, n_vectors=4)
    assert not report.passed


def test_check_relative_rejects_positions_that_are_not_additive():
    cfg = numrope.RopeConfig(head_dim=16)
    report = identity.check_relative(cfg, encoding=lambda x, p: numrope.apply_rope(x, cfg, p * p % 10007))
    assert not report.comparisons[2].passed


def test_closed_form_bound_is_tight_enough_to_see_one_wrong_frequency():
    # one frequency off by one part in 10**9 moves the score far more than the bound allows
    cfg = numrope.RopeConfig(head_dim=32)
    theta = cfg.inv_freq()
    theta[3] *= 1 + 1e-9

    def detuned(x, p):
        j0, j1 = cfg.pair_indices()
        ang = p[:, 0, None] * theta
        c, s = np.cos(ang)[:, None, None], np.sin(ang)[:, None, None]
        out = np.array(x, dtype=np.float64)
        out[..., j0] = x[..., j0] * c - x[..., j1] * s
        out[..., j1] = x[..., j1] * c + x[..., j0] * s
        return out

    report = identity.check_relative(cfg, encoding=detuned)
    assert not report.comparisons[0].passed and not report.comparisons[1].passed


#: How far above the measured error a bound may sit: the bounds are worst cases over every rounding, the
#: measured errors random draws; a few hundred covers float64 over 2**20 positions (the measured ratio is 279).
TIGHT = 500


def assert_tight(report, within=TIGHT):
    """Every comparison holds, and its bound is within ``within`` times the measured error (not vacuous)."""
    for c in report.comparisons:
        assert c.max_rel_error <= c.rel_bound, str(report)
        assert c.rel_bound <= within * c.max_rel_error, (
            f"{c.name}: bound {c.rel_bound:.3g} is {c.rel_bound / c.max_rel_error:.3g} times the measured "
            f"{c.max_rel_error:.3g}"
        )


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize(("cfg", "seq_len"), SMALL, ids=SMALL_IDS)
def test_check_relative_bounds_are_tight(cfg, seq_len, dtype):
    """A bound loosened many-fold would still pass numrope's output: only its distance to the error shows it."""
    assert_tight(identity.check_relative(cfg, dtype=dtype, seq_len=seq_len, max_position=4096, n_vectors=8))


def test_check_relative_bounds_are_tight_llama_sized_long_range():
    assert_tight(identity.check_relative(numrope.RopeConfig(head_dim=128, base=500000.0), max_position=2**20, seed=3))


def _loosen(monkeypatch, what, factor=10**6):
    if what == "apply":  # the bound on apply_rope's own rounding: every row's first term
        real = identity._apply_bound_coefficient
        monkeypatch.setattr(identity, "_apply_bound_coefficient", lambda *a, **k: factor * real(*a, **k))
    elif what == "cos/sin":  # the error of the exact-angle cos and sin: the closed and matrix forms
        real = identity.cos_sin_error
        monkeypatch.setattr(identity, "cos_sin_error", lambda *a, **k: factor * real(*a, **k))
    else:  # every bound as reported
        real = identity.Comparison
        monkeypatch.setattr(identity, "Comparison", lambda n, e, r, b, s="": real(n, e, r, factor * b, s))


@pytest.mark.parametrize("what", ["apply", "cos/sin", "every row"])
def test_a_bound_loosened_a_million_fold_fails_the_tightness_test(monkeypatch, what):
    cfg = numrope.RopeConfig(head_dim=32)
    assert_tight(identity.check_relative(cfg))
    _loosen(monkeypatch, what)
    loose = identity.check_relative(cfg)
    assert loose.passed  # passing alone cannot tell: numrope's output is within the loosened bound too
    with pytest.raises(AssertionError, match="times the measured"):
        assert_tight(loose)
    # and at the llama-sized long range, where the ratio is largest
    loose = identity.check_relative(numrope.RopeConfig(head_dim=128, base=500000.0), max_position=2**20, seed=3)
    with pytest.raises(AssertionError, match="times the measured"):
        assert_tight(loose)


def test_sinusoidal_absolute_is_the_transformer_encoding():
    x = np.zeros((1, 3, 1, 4))
    pe = identity.sinusoidal_absolute(x, 5)[0, :, 0]
    for row, p in enumerate((5, 6, 7)):
        want = [math.sin(p), math.cos(p), math.sin(p / 100), math.cos(p / 100)]
        np.testing.assert_allclose(pe[row], want, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="even"):
        identity.sinusoidal_absolute(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="seq_axis"):
        identity.sinusoidal_absolute(np.zeros((2, 4)), seq_axis=-1)


def test_check_relative_bad_input():
    cfg = numrope.RopeConfig(head_dim=8)
    with pytest.raises(ValueError, match="n_shifts"):
        identity.check_relative(cfg, n_shifts=1)
    with pytest.raises(ValueError, match="n_vectors"):
        identity.check_relative(cfg, n_vectors=0)
    with pytest.raises(ValueError, match="dtype"):
        identity.check_relative(cfg, dtype=np.int32)
    with pytest.raises(TypeError, match="callable"):
        identity.check_relative(cfg, encoding="absolute")
    with pytest.raises(TypeError, match="RopeConfig"):
        identity.check_relative("cfg")


def test_scaling_examples_cover_every_variant():
    from numrope import variants as scaling

    variants = getattr(scaling, "VARIANTS", None) or {
        c.rope_type: c
        for c in vars(scaling).values()
        if isinstance(c, type) and issubclass(c, scaling.RopeScaling) and c is not scaling.RopeScaling
    }
    assert {type(v) for v in configs.scaling_examples()} == set(variants.values())
    standard = configs.standard_configs()
    assert {c.layout for c, _ in standard} == {"half", "interleaved"}
    assert any(c.rotary_dim < c.head_dim for c, _ in standard)
    assert any(c.depends_on_seq_len for c, _ in standard)


# --- long-term decay ----------------------------------------------------------------------------


def _decay_by_hand(theta, distance):
    partial, total = 0j, 0.0
    for t in theta:
        partial += cmath.exp(1j * distance * t)
        total += abs(partial)
    return total / len(theta)


@pytest.mark.parametrize("head_dim", [2, 16, 128])
def test_decay_bound_at_zero_is_half_of_d_over_two_plus_one(head_dim):
    cfg = numrope.RopeConfig(head_dim=head_dim)
    assert decay.decay_bound(cfg, 0) == (head_dim // 2 + 1) / 2


def test_decay_bound_matches_the_sum_written_out():
    cfg = numrope.RopeConfig(head_dim=64, rotary_dim=48, base=500000.0)
    distances = [1, 7.5, 250, 4096, -30]
    got = decay.decay_bound(cfg, distances)
    want = [_decay_by_hand(cfg.inv_freq(), d) for d in distances]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_decay_bound_decays_like_roformer_figure_2():
    cfg = numrope.RopeConfig(head_dim=128)
    b = decay.decay_bound(cfg, np.arange(0, 1001))
    assert b[0] == b.max()
    means = [b[lo:hi].mean() for lo, hi in ((1, 10), (10, 100), (100, 1000))]
    assert means[0] > means[1] > means[2]


@pytest.mark.parametrize(("cfg", "seq_len"), SMALL, ids=SMALL_IDS)
def test_check_decay_holds(cfg, seq_len):
    report = decay.check_decay(cfg, seq_len=seq_len, n_vectors=16)
    assert report.passed, str(report)


def test_check_decay_catches_a_bound_that_does_not_bound(monkeypatch):
    real = decay.decay_bound
    monkeypatch.setattr(decay, "decay_bound", lambda cfg, d, **kw: real(cfg, d, **kw) / 4)
    report = decay.check_decay(numrope.RopeConfig(head_dim=32))
    assert [c.passed for c in report.comparisons] == [False, False, True]


def test_decay_bad_input():
    cfg = numrope.RopeConfig(head_dim=8)
    with pytest.raises(ValueError, match="finite"):
        decay.decay_bound(cfg, [1.0, np.inf])
    with pytest.raises(ValueError, match="max_distance"):
        decay.check_decay(cfg, max_distance=50)

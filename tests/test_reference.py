"""The three plain-NumPy forms agree with each other and with the explicit rotation matrix."""

import numpy as np
import pytest

import numrope
from numrope import reference
from numrope.reference import vectorised_numpy

CONFIGS = [
    numrope.RopeConfig(head_dim=12, rotary_dim=rd, layout=layout)
    for layout in ("half", "interleaved")
    for rd in (None, 8)
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.layout}-{c.rotary_dim}")
def test_three_forms_agree(cfg, rng):
    x = rng.standard_normal((2, 5, 3, 12))
    positions = rng.integers(0, 1000, (2, 5))
    a = reference.complex_form(x, cfg, positions)
    b = reference.rotate_half_form(x, cfg, positions)
    c = reference.matrix_form(x, cfg, positions)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)
    np.testing.assert_allclose(a, c, rtol=0, atol=1e-14)
    for inverse_form in (reference.complex_form, reference.rotate_half_form, reference.matrix_form):
        np.testing.assert_allclose(inverse_form(a, cfg, positions, inverse=True), x, rtol=0, atol=1e-13)


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.layout}-{c.rotary_dim}")
def test_rotation_matrix_structure(cfg):
    r = reference.rope_matrix(cfg, 7)
    np.testing.assert_allclose(r.T @ r, np.eye(12), atol=1e-15)
    j0, j1 = cfg.pair_indices()
    theta = cfg.inv_freq()
    # each pair block is the 2-D rotation by 7 theta_i; everything else is identity
    np.testing.assert_allclose(r[j1, j0], np.sin(7 * theta), atol=1e-15)
    np.testing.assert_allclose(r[j0, j1], -np.sin(7 * theta), atol=1e-15)
    mask = np.ones_like(r, bool)
    mask[j0, j0] = mask[j0, j1] = mask[j1, j0] = mask[j1, j1] = False
    np.testing.assert_array_equal(r[mask], np.eye(12)[mask])


def test_layouts_are_a_permutation_of_each_other(rng):
    """Interleaved RoPE is half-layout RoPE on features permuted to (0, 2, 4, ..., 1, 3, 5, ...)."""
    half = numrope.RopeConfig(head_dim=8, layout="half")
    inter = numrope.RopeConfig(head_dim=8, layout="interleaved")
    perm = np.concatenate([np.arange(0, 8, 2), np.arange(1, 8, 2)])
    x = rng.standard_normal((1, 6, 2, 8))
    np.testing.assert_allclose(
        reference.complex_form(x, inter)[..., perm], reference.complex_form(x[..., perm], half), atol=1e-15
    )


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.layout}-{c.rotary_dim}")
def test_vectorised_numpy_baseline_is_rope_in_float32_angles(cfg, rng):
    x = rng.standard_normal((1, 50, 2, 12)).astype(np.float32)
    # the baseline's float32 angles are off by up to |m theta| * 2**-24 radians
    np.testing.assert_allclose(vectorised_numpy(x, cfg), reference.complex_form(x, cfg), atol=50 * 2.0**-24 * 8)

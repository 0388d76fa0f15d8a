"""The pair layouts, the rotary part's offset and the direction, on every calling path, CPU and GPU.

``"interleaved_in_half_out"`` reads pair ``i`` from features ``(2i, 2i + 1)`` and writes it to
``(i, i + d/2)`` (DeepSeek-V3's ``apply_rotary_pos_emb_interleave``); ``rotary_offset`` moves the rotary
part inside the head (multi-head latent attention rotates its last features); ``direction=-1`` turns the
other way (nanochat). Each is held to plain-NumPy float64 forms written from first principles here and
in :mod:`numrope.reference`, with the per-dtype bound of ``conftest.rope_tolerance``.
"""

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_matches

import numrope
from numrope import reference
from numrope.validation import compare
from numrope.variants import YaRN


def by_hand(x, cfg, positions):
    """The rotation written out for each layout, without pair_indices: (batch, seq, heads, head_dim)."""
    x = np.asarray(x, dtype=np.float64)
    d, o, n = cfg.rotary_dim, cfg.rotary_offset, cfg.rotary_dim // 2
    theta = cfg.direction * cfg.base ** (-np.arange(n) * 2.0 / d)  # unscaled configurations only
    angle = np.asarray(positions, dtype=np.float64)[..., None] * theta  # (batch, seq, n)
    c, s = np.cos(angle)[..., None, :], np.sin(angle)[..., None, :]
    out = x.copy()
    part = x[..., o : o + d]
    if cfg.layout == "half":
        x0, x1 = part[..., :n], part[..., n:]
        out[..., o : o + n], out[..., o + n : o + d] = x0 * c - x1 * s, x1 * c + x0 * s
    elif cfg.layout == "interleaved":
        x0, x1 = part[..., 0::2], part[..., 1::2]
        out[..., o : o + d : 2], out[..., o + 1 : o + d : 2] = x0 * c - x1 * s, x1 * c + x0 * s
    else:  # read interleaved, write half
        x0, x1 = part[..., 0::2], part[..., 1::2]
        out[..., o : o + n], out[..., o + n : o + d] = x0 * c - x1 * s, x1 * c + x0 * s
    return out


CONFIGS = [
    numrope.RopeConfig(16, layout="interleaved_in_half_out"),
    numrope.RopeConfig(24, rotary_dim=8, rotary_offset=16, layout="interleaved_in_half_out"),  # MLA: the end
    numrope.RopeConfig(24, rotary_dim=8, rotary_offset=6, layout="interleaved_in_half_out"),  # the middle
    numrope.RopeConfig(24, rotary_dim=8, rotary_offset=16, layout="half"),
    numrope.RopeConfig(24, rotary_dim=8, rotary_offset=10, layout="interleaved"),
    numrope.RopeConfig(16, direction=-1),
    numrope.RopeConfig(20, rotary_dim=12, rotary_offset=4, layout="interleaved", direction=-1),
    numrope.RopeConfig(20, rotary_dim=12, rotary_offset=8, layout="interleaved_in_half_out", direction=-1),
]
IDS = [f"{c.layout}-{c.rotary_dim}of{c.head_dim}@{c.rotary_offset}{'-rev' if c.direction < 0 else ''}" for c in CONFIGS]


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_every_path_rotates_as_written_by_hand(cfg, dtype, rng):
    x = rng.standard_normal((2, 9, 3, cfg.head_dim)).astype(dtype)
    rows = rng.integers(0, 5000, (2, 9))
    expected = by_hand(x, cfg, rows)
    top = 5000 * 1.0
    # per-row positions (angles computed in the same pass), one row for all, a table, q/k, in place, out=
    assert_matches(numrope.apply_rope(x, cfg, rows), expected, x, dtype, top)
    assert_matches(numrope.apply_rope(x, cfg, rows[0]), by_hand(x, cfg, rows[[0, 0]]), x, dtype, top)
    cache = numrope.rope_cache(cfg, 5000, dtype=np.float32 if dtype != np.float64 else np.float64)
    assert_matches(numrope.apply_rope(x, cfg, rows, cache=cache), expected, x, dtype, top)
    q, k = numrope.apply_rope_qk(x, x[:, :, :1], cfg, rows)
    assert_matches(q, expected, x, dtype, top)
    assert_matches(k, expected[:, :, :1], x, dtype, top)
    y = x.copy()
    assert numrope.apply_rope(y, cfg, rows, out=y) is y
    assert_matches(y, expected, x, dtype, top)
    y = x.copy()
    numrope.apply_rope(y, cfg, rows, cache=cache, out=y)
    assert_matches(y, expected, x, dtype, top)
    yq, yk = x.copy(), x[:, :, :1].copy()
    numrope.apply_rope_qk(yq, yk, cfg, rows, out=(yq, yk))
    assert_matches(yq, expected, x, dtype, top)
    assert_matches(yk, expected[:, :, :1], x, dtype, top)
    out = np.empty_like(x)
    numrope.apply_rope(x, cfg, rows, out=out)
    assert_matches(out, expected, x, dtype, top)
    # (batch, heads, seq, head_dim)
    xt = np.ascontiguousarray(x.transpose(0, 2, 1, 3))
    got = numrope.apply_rope(xt, cfg, rows, seq_axis=-2)
    assert_matches(got.transpose(0, 2, 1, 3), expected, x, dtype, top)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_inverse_and_transpose(cfg, rng):
    scaled = numrope.RopeConfig(
        cfg.head_dim,
        rotary_dim=cfg.rotary_dim,
        rotary_offset=cfg.rotary_offset,
        layout=cfg.layout,
        direction=cfg.direction,
        scaling=YaRN(factor=4.0, original_max_position_embeddings=64),
    )
    for c in (cfg, scaled):
        x = rng.standard_normal((1, 7, 2, c.head_dim))
        pos = rng.integers(0, 3000, 7)
        y = numrope.apply_rope(x, c, pos)
        a = c.attention_scaling
        assert_matches(numrope.apply_rope(y, c, pos, inverse=True), x, y / a, np.float64, 3000)
        # the transpose: <R x, g> = <x, R^T g> for any g
        g = rng.standard_normal(x.shape)
        lhs = np.sum(y * g)
        rhs = np.sum(x * numrope.apply_rope(g, c, pos, transpose=True))
        assert math.isclose(lhs, rhs, rel_tol=1e-12, abs_tol=1e-12)
        for form in (reference.complex_form, reference.rotate_half_form, reference.matrix_form):
            assert_matches(y, form(x, c, pos), x, np.float64, 3000, a)
            assert_matches(
                numrope.apply_rope(y, c, pos, inverse=True), form(y, c, pos, inverse=True), y, np.float64, 3000
            )
            assert_matches(
                numrope.apply_rope(g, c, pos, transpose=True), form(g, c, pos, transpose=True), g, np.float64, 3000, a
            )


def test_interleaved_in_half_out_is_a_permuted_interleaved_rotation(rng):
    """Queries and keys get the same permutation: q . k equals the interleaved layout's."""
    inter = numrope.RopeConfig(64, rotary_dim=32, rotary_offset=32, layout="interleaved")
    moved = numrope.RopeConfig(64, rotary_dim=32, rotary_offset=32, layout="interleaved_in_half_out")
    q, k = rng.standard_normal((1, 5, 2, 64)), rng.standard_normal((1, 5, 2, 64))
    pos = np.array([0, 3, 17, 900, 4096])
    a = numrope.apply_rope(q, inter, pos) * numrope.apply_rope(k, inter, pos)
    b = numrope.apply_rope(q, moved, pos) * numrope.apply_rope(k, moved, pos)
    assert np.allclose(a.sum(-1), b.sum(-1), rtol=1e-13, atol=1e-13)
    # at position 0 the rotation is the identity, the permutation is not
    y = numrope.apply_rope(q, moved, 0)
    perm = np.r_[0:32, 32:64:2, 33:64:2]
    assert np.array_equal(y[:, 0], q[:, 0][..., perm])


def test_pair_indices_read_and_write():
    cfg = numrope.RopeConfig(12, rotary_dim=8, rotary_offset=4, layout="interleaved_in_half_out")
    assert [a.tolist() for a in cfg.pair_indices()] == [[4, 6, 8, 10], [5, 7, 9, 11]]
    assert [a.tolist() for a in cfg.pair_indices(output=True)] == [[4, 5, 6, 7], [8, 9, 10, 11]]
    half = numrope.RopeConfig(12, rotary_dim=8, rotary_offset=4)
    assert [a.tolist() for a in half.pair_indices()] == [[4, 5, 6, 7], [8, 9, 10, 11]]
    assert [a.tolist() for a in half.pair_indices(output=True)] == [[4, 5, 6, 7], [8, 9, 10, 11]]


def test_direction_negates_the_frequencies():
    cfg = numrope.RopeConfig(8, base=10000.0, direction=-1)
    assert cfg.inv_freq().tolist() == [-1.0, -0.1, -0.01, -0.001]
    assert cfg.attention_scaling == 1.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rotary_dim": 8, "rotary_offset": 10}, ValueError, r"rotary_offset must be in \[0, head_dim - rotary_dim\]"),
        ({"rotary_offset": -2}, ValueError, "rotary_offset must be in"),
        ({"rotary_offset": 2.0}, TypeError, "rotary_offset must be an int"),
        ({"direction": 0}, ValueError, "direction must be 1 or -1"),
        ({"direction": True}, ValueError, "direction must be 1 or -1"),
        ({"layout": "deinterleaved"}, ValueError, "layout must be one of"),
    ],
)
def test_bad_fields(kwargs, error, match):
    with pytest.raises(error, match=match):
        numrope.RopeConfig(16, **kwargs)


@pytest.mark.parametrize("inverse", [False, True])
def test_validation_pairs_inputs_and_outputs_where_they_are(inverse, rng):
    cfg = numrope.RopeConfig(24, rotary_dim=16, rotary_offset=8, layout="interleaved_in_half_out")
    x = rng.standard_normal((1, 32, 4, 24)).astype(np.float32)
    pos = rng.integers(0, 100000, 32)
    good = by_hand(x, cfg, pos[None]) if not inverse else None
    if inverse:  # the inverse of by_hand: read the half layout, turn back, write interleaved
        y = by_hand(x, cfg, pos[None])
        x, good = y.astype(np.float32), x.astype(np.float64)
    assert compare(good.astype(np.float32), x, cfg, pos, float32_angles=True, inverse=inverse).ok
    wrong = numrope.RopeConfig(24, rotary_dim=16, rotary_offset=8, layout="interleaved")
    bad = numrope.apply_rope(x, wrong, pos, inverse=inverse)
    report = compare(bad, x, cfg, pos, float32_angles=True, inverse=inverse)
    assert not report.ok


def test_to_hf_round_trips_and_refuses_what_no_key_says():
    for cfg in (
        numrope.RopeConfig(192, rotary_dim=64, rotary_offset=128, layout="interleaved_in_half_out"),
        numrope.RopeConfig(192, rotary_dim=64, rotary_offset=128, layout="half"),
        numrope.RopeConfig(192, rotary_dim=64, rotary_offset=128, layout="interleaved"),
        numrope.RopeConfig(64, layout="interleaved_in_half_out"),
    ):
        assert numrope.RopeConfig.from_hf(cfg.to_hf()) == cfg
    for cfg in (
        numrope.RopeConfig(16, direction=-1),
        numrope.RopeConfig(24, rotary_dim=8, rotary_offset=8),
        numrope.RopeConfig(24, rotary_dim=8, layout="interleaved_in_half_out"),
    ):
        with pytest.raises(NotImplementedError):
            cfg.to_hf()


def test_cuda_kernels(rng):
    cuda = pytest.importorskip("numba.cuda")
    import numrope.cuda as nc

    if not nc.is_available():
        pytest.skip("no CUDA device or simulator")
    for cfg in CONFIGS:
        for dtype in (np.float32, np.float64):
            x = rng.standard_normal((1, 5, 2, cfg.head_dim)).astype(dtype)
            xk = np.ascontiguousarray(x[:, :, :1])
            pos = np.array([0, 7, 300, 2000, 4999])
            expected = by_hand(x, cfg, pos[None])
            got = nc.apply_rope(cuda.to_device(x), cfg, pos).copy_to_host()
            assert_matches(got, expected, x, dtype, 5000)
            d = cuda.to_device(x)
            nc.apply_rope(d, cfg, pos, out=d)
            assert_matches(d.copy_to_host(), expected, x, dtype, 5000)
            dq, dk = cuda.to_device(x), cuda.to_device(xk)
            nc.apply_rope_qk(dq, dk, cfg, pos, out=(dq, dk))
            assert_matches(dq.copy_to_host(), expected, x, dtype, 5000)
            assert_matches(dk.copy_to_host(), expected[:, :, :1], x, dtype, 5000)
            back = nc.apply_rope(cuda.to_device(got), cfg, pos, inverse=True).copy_to_host()
            assert_matches(back, x, got, dtype, 5000)


def test_numrope_checks_follow_the_rotary_part_and_refuse_moving_pairs(capsys):
    """numrope.checks (numrope verify) hold the relative-position identity and the rotation matrices of a
    rotary part inside the head; the interleaved_in_half_out map is no rotation of one basis: refused."""
    from numrope.checks import identity
    from numrope.checks.matrices import exact_rotation_matrix
    from numrope.cli import main

    for cfg in CONFIGS:
        if cfg.layout == "interleaved_in_half_out":
            with pytest.raises(NotImplementedError, match="interleaved_in_half_out"):
                identity.check_rotation(cfg)
            continue
        assert identity.check_relative(cfg).passed, cfg
        assert identity.check_rotation(cfg).passed, cfg
        # the matrix rotates exactly the features by_hand does
        x = np.eye(cfg.head_dim)[:, None, None, :]  # one basis vector per batch row
        m = 123.0
        got = by_hand(x, cfg, np.full((cfg.head_dim, 1), m))[:, 0, 0, :]
        assert np.allclose(got.T, exact_rotation_matrix(cfg, m), atol=1e-12)
    fixtures = Path(__file__).parent / "fixtures" / "configs"
    assert main(["verify", "--config", str(fixtures / "deepseek-v2-lite.json"), "--max-position", "256"]) == 0
    assert main(["verify", "--config", str(fixtures / "deepseek-v3.json"), "--max-position", "256"]) == 2
    assert "interleaved_in_half_out" in capsys.readouterr().err


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_the_speed_baseline_rotates_every_layout(cfg, rng):
    """numrope.reference.vectorised_numpy (numrope bench's and numrope demo's baseline), float32 angles:
    within |m theta| * 2**-23 of the rotation by hand, for positions below 20."""
    x = rng.standard_normal((1, 7, 2, cfg.head_dim))
    pos = np.arange(7) * 3
    got = reference.vectorised_numpy(x, cfg, pos)
    assert np.abs(got - by_hand(x, cfg, pos[None])).max() <= 2 * np.abs(x).max() * (18 * 2.0**-23 + 2.0**-22)


def test_float32_emulation_follows_the_direction_and_the_layout(rng):
    """numrope.validation.emulate's float32 angles (as transformers forms them) turn the way cfg does."""
    from numrope.validation import emulate

    for cfg in CONFIGS:
        x = rng.standard_normal((1, 9, 2, cfg.head_dim)).astype(np.float32)
        pos = np.arange(9) * 5
        got = emulate.apply_rope(x, cfg, pos)
        assert np.abs(got - by_hand(x, cfg, pos[None])).max() <= 2 * np.abs(x).max() * (45 * 2.0**-23 + 2.0**-21)

"""Multi-axis RoPE (numrope.axes): the maps, the configuration, and apply_rope / apply_rope_qk in every
form they accept, against a plain-NumPy float64 reference written here."""

import numpy as np
import pytest
from conftest import assert_matches

import numrope
from numrope import axes

DTYPES = [np.float16, np.float32, np.float64]


def thetas(cfg, seq_len=None):
    """The frequency of each pair, from the definition: base**(-2k/rotary_dim) at k = freq[i] (no scaling)."""
    k = np.asarray(cfg.axes.freq if cfg.axes is not None else range(cfg.n_pairs), dtype=np.float64)
    return cfg.base ** (-2 * k / cfg.rotary_dim)


def reference(x, cfg, coords, seq_axis=-3, sign=1.0, factor=1.0, theta=None):
    """Rotate x (float64) by angles coords[axis[i]] * theta_i; coords (n_axes, *batch, S) for x's batch axes."""
    x = np.asarray(x, dtype=np.float64)
    theta = thetas(cfg) if theta is None else theta
    coords = np.asarray(coords, dtype=np.float64)
    axis = np.asarray(cfg.axes.axis)
    angles = sign * np.moveaxis(coords[axis], 0, -1) * theta  # (*batch, S, P)
    ax = seq_axis % x.ndim
    heads = x.ndim - ax - 2  # head axes after the sequence axis
    angles = angles.reshape(angles.shape[:-1] + (1,) * heads + angles.shape[-1:])
    if ax == x.ndim - 2 and ax > 0 and angles.ndim - 1 < ax + 1:  # (B, H, S, D): a head axis before S
        angles = np.expand_dims(angles, -3)
    j0, j1 = cfg.pair_indices()
    out = x.copy()
    a, b = x[..., j0], x[..., j1]
    out[..., j0] = factor * (a * np.cos(angles) - b * np.sin(angles))
    out[..., j1] = factor * (b * np.cos(angles) + a * np.sin(angles))
    return out


def max_angle(coords, cfg):
    return float(np.abs(np.asarray(coords, dtype=np.float64)).max(initial=0) * cfg.inv_freq().max())


QWEN2 = numrope.RopeConfig(32, 1e6, axes=axes.sectioned([4, 6, 6]))
GLM = numrope.RopeConfig(32, 1e4, rotary_dim=16, layout="interleaved", axes=axes.sectioned([2, 3, 3]))
QWEN3 = numrope.RopeConfig(32, 5e6, axes=axes.interleaved([6, 5, 5]))
AXIAL = numrope.RopeConfig(24, 1e4, axes=axes.axial(12))
PIXTRAL = numrope.RopeConfig(24, 1e4, axes=axes.pixtral(12))
CONFIGS = {"qwen2": QWEN2, "glm": GLM, "qwen3": QWEN3, "axial": AXIAL, "pixtral": PIXTRAL}


# -- the maps -----------------------------------------------------------------------------------


def test_maps_of_the_families():
    """The patterns stated in transformers' recomposition_frequencies, spelled out."""
    assert axes.sectioned([16, 24, 24]).pattern() == "t" * 16 + "h" * 24 + "w" * 24
    assert axes.interleaved([24, 20, 20], 64).pattern() == "thw" * 20 + "t" * 4
    assert axes.interleaved([24, 20, 20], 64).counts() == (24, 20, 20)
    assert axes.ernie([22, 22, 20]).pattern() == "hw" * 22 + "t" * 20
    m = axes.axial(40)
    assert m.pattern() == "h" * 20 + "w" * 20 and m.freq == tuple(range(0, 40, 2)) * 2
    p = axes.pixtral(32)
    assert p.pattern() == "h" * 16 + "w" * 16 and p.freq == tuple(range(0, 32, 2)) + tuple(range(1, 32, 2))
    assert axes.axial(4, names=("x", "y")).names == ("x", "y")


def test_axial_frequencies_are_base_to_minus_4k_over_d():
    cfg = numrope.RopeConfig(80, 1e4, axes=axes.axial(40))
    g = 1e4 ** (-4 * np.arange(20) / 80)
    np.testing.assert_allclose(cfg.inv_freq(), np.concatenate([g, g]), rtol=1e-15)


def test_frequencies_go_through_the_map_after_scaling():
    base = numrope.RopeConfig(24, 1e4, scaling=numrope.variants.Linear(4.0))
    cfg = numrope.RopeConfig(24, 1e4, scaling=numrope.variants.Linear(4.0), axes=axes.pixtral(12))
    np.testing.assert_array_equal(cfg.inv_freq(), base.inv_freq()[list(cfg.axes.freq)])
    dyn = numrope.RopeConfig(24, 1e4, scaling=numrope.variants.DynamicNTK(2.0, 16), axes=axes.axial(12))
    plain = numrope.RopeConfig(24, 1e4, scaling=numrope.variants.DynamicNTK(2.0, 16))
    np.testing.assert_array_equal(dyn.inv_freq(64), plain.inv_freq(64)[list(dyn.axes.freq)])


def test_equal_maps_and_configs_compare_equal_and_hash():
    a = numrope.RopeConfig(32, axes=axes.sectioned([4, 6, 6]))
    b = numrope.RopeConfig(32, axes=axes.AxisMap([0] * 4 + [1] * 6 + [2] * 6, names=("t", "h", "w")))
    assert a == b and hash(a) == hash(b)
    assert a != numrope.RopeConfig(32, axes=axes.interleaved([4, 6, 6]))
    assert numrope.RopeConfig(32).n_axes == 1 and a.n_axes == 3


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: axes.AxisMap([]), ValueError, "one entry per rotating pair"),
        (lambda: axes.AxisMap([0, 1], [0]), ValueError, "one entry per pair each"),
        (lambda: axes.AxisMap([0, 2], names=("a", "b")), ValueError, "axis 2 is not one of"),
        (lambda: axes.AxisMap([0, -1]), ValueError, "axis -1"),
        (lambda: axes.AxisMap([0, 1], [0, -2]), ValueError, "non-negative"),
        (lambda: axes.AxisMap([0, 1.0]), TypeError, "ints"),
        (lambda: axes.AxisMap([0, 1], names=("a", "a")), ValueError, "differ"),
        (lambda: axes.AxisMap([0], names="t"), TypeError, "names"),
        (lambda: axes.sectioned([4, -1, 2]), ValueError, "non-negative"),
        (lambda: axes.interleaved([4, 4]), ValueError, "3 entries"),
        (lambda: axes.ernie([4, 3, 2]), ValueError, r"\[0\] == \[1\]"),
        (lambda: axes.axial(5), ValueError, "even"),
        (lambda: numrope.RopeConfig(32, axes=axes.sectioned([4, 6, 5])), ValueError, "one entry per rotating pair"),
        (lambda: numrope.RopeConfig(32, axes=axes.AxisMap([0] * 16, [0] * 15 + [16])), ValueError, "frequency 16"),
        (lambda: numrope.RopeConfig(32, axes=[0] * 16), TypeError, "AxisMap"),
    ],
)
def test_bad_maps_are_refused(make, error, match):
    with pytest.raises(error, match=match):
        make()


# -- apply_rope in every form -----------------------------------------------------------------


def coords_like(rng, n_axes, shape, high=300):
    return rng.integers(0, high, (n_axes, *shape))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("use_cache", [False, True], ids=["fresh", "cache"])
def test_position_forms_match_the_reference(name, dtype, use_cache, rng):
    """(n_axes, S) shared, (n_axes, B, S) per row, (n_axes, 1, S), and float coordinates without a cache."""
    cfg = CONFIGS[name]
    n = cfg.n_axes
    x = rng.standard_normal((3, 5, 2, cfg.head_dim)).astype(dtype)
    cache = numrope.rope_cache(cfg, 300, dtype=np.float64 if dtype == np.float64 else np.float32)
    forms = [coords_like(rng, n, (5,)), coords_like(rng, n, (3, 5)), coords_like(rng, n, (1, 5))]
    if not use_cache:
        forms += [rng.uniform(-300, 300, (n, 3, 5)), 2**20 + coords_like(rng, n, (3, 5))]
    for coords in forms:
        got = numrope.apply_rope(x, cfg, coords, cache=cache if use_cache else None)
        assert got.dtype == x.dtype and got.shape == x.shape
        full = coords.reshape((n,) + (1,) * (3 - coords.ndim) + coords.shape[1:])
        expected = reference(x, cfg, np.broadcast_to(full, (n, 3, 5)))
        assert_matches(got, expected, x, dtype, max_angle(coords, cfg))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_text_tokens_are_plain_rope_bit_for_bit(name, rng):
    """Coordinates all equal: the same bits as the 1-D positions (which take the plain path)."""
    cfg = CONFIGS[name]
    x = rng.standard_normal((2, 7, 3, cfg.head_dim)).astype(np.float32)
    pos = rng.integers(0, 1000, (2, 7))
    one_d = numrope.apply_rope(x[:1], cfg, pos[0])
    np.testing.assert_array_equal(numrope.apply_rope(x[:1], cfg, np.stack([pos[0]] * cfg.n_axes)), one_d)
    np.testing.assert_array_equal(numrope.apply_rope(x[:1], cfg), numrope.apply_rope(x[:1], cfg, np.arange(7)))
    np.testing.assert_array_equal(numrope.apply_rope(x[:1], cfg, 5), numrope.apply_rope(x[:1], cfg, 5 + np.arange(7)))
    expected = reference(x[:1], cfg, np.stack([pos[0]] * cfg.n_axes))
    assert_matches(one_d, expected, x[:1], np.float32, max_angle(pos, cfg))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("use_cache", [False, True], ids=["fresh", "cache"])
def test_heads_before_the_sequence(dtype, use_cache, rng):
    cfg = QWEN3
    x = rng.standard_normal((2, 4, 6, cfg.head_dim)).astype(dtype)  # (B, H, S, D)
    cache = numrope.rope_cache(cfg, 100, dtype=np.float64 if dtype == np.float64 else np.float32)
    kw = {"cache": cache} if use_cache else {}
    coords = coords_like(rng, 3, (2, 6), 100)
    expected = reference(x, cfg, coords, seq_axis=-2)
    got = numrope.apply_rope(x, cfg, coords, seq_axis=-2, **kw)
    assert_matches(got, expected, x, dtype, max_angle(coords, cfg))
    got = numrope.apply_rope(x, cfg, coords[:, :, None, :], seq_axis=-2, **kw)  # (n_axes, B, 1, S)
    assert_matches(got, expected, x, dtype, max_angle(coords, cfg))


def test_packed_sequences(rng):
    """(tokens, heads, head_dim) holding two sequences, each with its own text/image coordinates."""
    cfg = QWEN2
    x = rng.standard_normal((11, 2, cfg.head_dim))
    first = np.array([[0, 1, 2, 2, 2, 4], [0, 1, 2, 2, 3, 4], [0, 1, 2, 3, 2, 4]])
    second = np.broadcast_to(np.arange(5), (3, 5))
    coords = np.concatenate([first, second], axis=1)
    got = numrope.apply_rope(x, cfg, coords)
    assert_matches(got, reference(x, cfg, coords), x, np.float64, max_angle(coords, cfg))


@pytest.mark.parametrize("seq_axis", [-3, -2])
@pytest.mark.parametrize("use_cache", [False, True], ids=["fresh", "cache"])
def test_qk_with_grouped_query_heads(seq_axis, use_cache, rng):
    cfg = GLM
    b, s = 2, 6
    q_shape = (b, s, 8, cfg.head_dim) if seq_axis == -3 else (b, 8, s, cfg.head_dim)
    k_shape = (b, s, 2, cfg.head_dim) if seq_axis == -3 else (b, 2, s, cfg.head_dim)
    q, k = rng.standard_normal(q_shape).astype(np.float32), rng.standard_normal(k_shape).astype(np.float32)
    coords = coords_like(rng, 3, (b, s), 50)
    kw = {"cache": numrope.rope_cache(cfg, 50)} if use_cache else {}
    q_rot, k_rot = numrope.apply_rope_qk(q, k, cfg, coords, seq_axis=seq_axis, **kw)
    for got, x in ((q_rot, q), (k_rot, k)):
        assert_matches(got, reference(x, cfg, coords, seq_axis=seq_axis), x, np.float32, max_angle(coords, cfg))


def test_out_inverse_and_transpose_with_an_attention_factor(rng):
    cfg = numrope.RopeConfig(32, 1e6, scaling=numrope.variants.YaRN(4.0, 1024), axes=axes.sectioned([4, 6, 6]))
    a = cfg.attention_scaling
    assert a != 1.0
    x = rng.standard_normal((2, 6, 3, 32))
    coords = coords_like(rng, 3, (2, 6), 4000)
    theta = cfg.inv_freq()
    forward = reference(x, cfg, coords, factor=a, theta=theta)
    out = np.empty_like(x)
    assert numrope.apply_rope(x, cfg, coords, out=out) is out
    assert_matches(out, forward, x, np.float64, max_angle(coords, cfg), scaling=a)
    back = numrope.apply_rope(out, cfg, coords, inverse=True)
    assert_matches(back, x, x, np.float64, max_angle(coords, cfg), scaling=a)
    transposed = numrope.apply_rope(x, cfg, coords, transpose=True)
    assert_matches(transposed, reference(x, cfg, coords, sign=-1.0, factor=a, theta=theta), x, np.float64, 1e4, a)
    cache = numrope.rope_cache(cfg, 4000, dtype=np.float64)
    inverse = numrope.apply_rope(out, cfg, coords, cache=cache, inverse=True)
    assert_matches(inverse, x, x, np.float64, max_angle(coords, cfg), scaling=a)
    y = x.copy()
    assert numrope.apply_rope(y, cfg, coords, out=y) is y  # in place
    np.testing.assert_array_equal(y, out)


def test_dynamic_variants_take_the_largest_coordinate(rng):
    """Without seq_len, the sequence length is the largest coordinate of any axis plus one."""
    cfg = numrope.RopeConfig(32, 1e4, scaling=numrope.variants.DynamicNTK(2.0, 64), axes=axes.sectioned([4, 6, 6]))
    x = rng.standard_normal((1, 4, 1, 32))
    coords = np.array([[0, 1, 2, 3], [0, 1, 150, 3], [0, 1, 2, 3]])
    got = numrope.apply_rope(x, cfg, coords)
    expected = reference(x, cfg, coords, theta=cfg.inv_freq(151))
    assert_matches(got, expected, x, np.float64, max_angle(coords, cfg))
    assert not np.allclose(got, reference(x, cfg, coords, theta=cfg.inv_freq(4)))


@pytest.mark.parametrize(
    ("positions", "kwargs", "error", "match"),
    [
        (np.zeros((2, 5), int), {}, ValueError, "3 coordinate axes"),
        (np.zeros((4, 2, 5), int), {}, ValueError, r"give \(3, seq_len\)"),
        (np.zeros((3, 4), int), {}, ValueError, "5 entries along its last axis"),
        (np.zeros((3, 3, 5), int), {}, ValueError, "do not broadcast"),
        (np.zeros((3, 2, 5)), {"cache": "table"}, TypeError, "integers to index a cache"),
        (np.full((3, 2, 5), 40), {"cache": "table"}, IndexError, "outside the cache table"),
        (np.full((3, 2, 5), -1), {"cache": "table"}, IndexError, "negative"),
        (np.full((3, 2, 5), np.nan), {}, ValueError, "finite"),
        (np.zeros((3, 2, 5), bool), {}, TypeError, "integers or real"),
        (np.array(3), {}, TypeError, "0-d"),
    ],
)
def test_bad_positions_are_refused_by_name(positions, kwargs, error, match):
    cfg = QWEN2
    x = np.zeros((2, 5, 1, 32), np.float32)
    if kwargs.get("cache") == "table":
        kwargs = {"cache": numrope.rope_cache(cfg, 40)}
    with pytest.raises(error, match=match):
        numrope.apply_rope(x, cfg, positions, **kwargs)
    with pytest.raises(error, match=match):
        numrope.apply_rope_qk(x, x, cfg, positions, **kwargs)


def test_threads_do_not_share_their_per_token_tables(rng):
    """The per-token table is scratch memory of the calling thread: another thread's call leaves it alone."""
    import threading

    from numrope import _axes

    cfg = QWEN3
    cache = numrope.rope_cache(cfg, 500)
    x = np.zeros((1, 64, 1, cfg.head_dim), np.float32)
    mine, theirs = coords_like(rng, 3, (64,), 500), coords_like(rng, 3, (64,), 500)
    _, (cos, sin) = _axes.per_token(cfg, mine, cache, (x,), -3, None)
    before = cos.copy(), sin.copy()
    other = threading.Thread(target=_axes.per_token, args=(cfg, theirs, cache, (x,), -3, None))
    other.start()
    other.join()
    np.testing.assert_array_equal(cos, before[0])
    np.testing.assert_array_equal(sin, before[1])


@pytest.mark.parametrize("use_cache", [False, True], ids=["fresh", "cache"])
def test_dask_arrays_chunk_the_per_token_table(use_cache, rng):
    """Dask: the same bits as in memory for any chunking, and each result keeps its own table until computed."""
    da = pytest.importorskip("dask.array", reason="dask is not installed")
    cfg = numrope.RopeConfig(32, 1e6, scaling=numrope.variants.YaRN(2.0, 64), axes=axes.sectioned([4, 6, 6]))
    x = rng.standard_normal((3, 10, 2, 32)).astype(np.float32)
    k = rng.standard_normal((3, 10, 1, 32)).astype(np.float32)
    kw = {"cache": numrope.rope_cache(cfg, 100)} if use_cache else {}
    first, second = coords_like(rng, 3, (3, 10), 100), coords_like(rng, 3, (10,), 100)
    lazy = [numrope.apply_rope(da.from_array(x, chunks=(1, 4, 2, 32)), cfg, c, **kw) for c in (first, second)]
    numrope.apply_rope(x, cfg, second, **kw)  # an in-memory call between building and computing
    for result, c in zip(lazy, (first, second), strict=True):
        np.testing.assert_array_equal(np.asarray(result), numrope.apply_rope(x, cfg, c, **kw))
    q_rot, k_rot = numrope.apply_rope_qk(da.from_array(x, chunks=(2, 3, 2, 32)), k, cfg, first, inverse=True, **kw)
    want_q, want_k = numrope.apply_rope_qk(x, k, cfg, first, inverse=True, **kw)
    np.testing.assert_array_equal(np.asarray(q_rot), want_q)
    np.testing.assert_array_equal(np.asarray(k_rot), want_k)


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("seq_axis", [-3, -2])
def test_plain_numpy_reference_forms_take_coordinates(name, seq_axis, rng):
    """numrope.reference's complex and rotate-half forms rotate coordinate vectors as this module's reference does."""
    from numrope import reference as forms

    cfg = CONFIGS[name]
    x = rng.standard_normal((2, 5, 3, cfg.head_dim) if seq_axis == -3 else (2, 3, 5, cfg.head_dim))
    coords = coords_like(rng, cfg.n_axes, (2, 5))
    expected = reference(x, cfg, coords, seq_axis=seq_axis)
    for form in (forms.complex_form, forms.rotate_half_form):
        assert_matches(form(x, cfg, coords, seq_axis=seq_axis), expected, x, np.float64, max_angle(coords, cfg))
    with pytest.raises(NotImplementedError, match="one position per token"):
        forms.matrix_form(x, cfg, coords, seq_axis=seq_axis)

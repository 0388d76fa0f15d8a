"""numrope.testing: the derived tolerance holds for correct outputs and rejects wrong ones; inputs of any kind."""

import ctypes

import numpy as np
import pytest

import numrope
from numrope import reference
from numrope._interop import _DLDataType, _DLDevice, _DLTensor, as_numpy
from numrope.testing import assert_rope_allclose, error_bound
from numrope.validation import emulate

ml_dtypes = pytest.importorskip("ml_dtypes")

CFG = numrope.RopeConfig(head_dim=64, base=500000.0)
NARROW = ["bfloat16", "float16", "float32"]


def in_dtype(a, dtype):
    return np.asarray(a, dtype=ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)


@pytest.fixture
def x(rng):
    return rng.standard_normal((2, 64, 4, 64))


# -- the tolerance ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", NARROW)
def test_bound_holds_with_every_step_in_the_dtype(x, dtype):
    """Table, products, sums and output all rounded to the dtype: the worst case the bound is derived for."""
    xd = in_dtype(x, dtype)
    positions = np.arange(64) * 3 + 11
    y = emulate.apply_rope(xd, CFG, positions, angles="float64")
    exact = reference.complex_form(np.asarray(xd, np.float64), CFG, positions)
    err = np.abs(np.asarray(y, np.float64) - exact)
    bound = error_bound(xd, CFG, positions, dtype=dtype)
    assert (err <= bound).all()
    assert (err / bound).max() > 0.1, "the bound should not be vacuous"


@pytest.mark.parametrize("dtype", NARROW)
def test_float32_angles_need_the_position_term(x, dtype):
    xd = in_dtype(x, dtype)
    positions = np.arange(64) * 2000  # up to 126000
    y = np.asarray(emulate.apply_rope(xd, CFG, positions), np.float64)
    err = np.abs(y - reference.complex_form(np.asarray(xd, np.float64), CFG, positions))
    assert (err <= error_bound(xd, CFG, positions, dtype=dtype, float32_angles=True)).all()
    if dtype != "bfloat16":  # bfloat16's own rounding hides float32 angles up to 2**17
        assert not (err <= error_bound(xd, CFG, positions, dtype=dtype)).all()


def test_float32_angle_bound_covers_llama_cpp_recurrence(rng):
    """theta_i built by i repeated float32 products (ggml's theta *= theta_scale) stays within the bound."""
    cfg = numrope.RopeConfig(head_dim=128, base=10000.0)
    x = rng.standard_normal((1, 32, 1, 128))
    positions = np.arange(32) * 4001 + 7
    scale = np.float32(cfg.base) ** np.float32(-2.0 / 128)
    theta = np.empty((32, 64), np.float32)
    theta[:, 0] = positions.astype(np.float32)
    for i in range(1, 64):
        theta[:, i] = theta[:, i - 1] * scale
    c, s = np.cos(theta.astype(np.float64)), np.sin(theta.astype(np.float64))
    x0, x1 = x[..., :64], x[..., 64:]
    y = np.concatenate([x0 * c[:, None] - x1 * s[:, None], x1 * c[:, None] + x0 * s[:, None]], axis=-1)
    err = np.abs(y - reference.complex_form(x, cfg, positions))
    assert (err <= error_bound(x, cfg, positions, dtype="float64", float32_angles=True)).all()
    assert not (err <= error_bound(x, cfg, positions, dtype="float64")).all()


def test_error_bound_shape_growth_and_overrides(x):
    b = error_bound(x, CFG, dtype="float32")
    assert b.shape == x.shape
    grown = error_bound(x, CFG, dtype="float32", float32_angles=True)
    assert (grown[:, 0] == b[:, 0]).all()  # position 0: no angle error
    assert (grown[:, 1:] > b[:, 1:]).all()
    flat = error_bound(x, CFG, dtype="float32", rtol=0.0, atol=0.5)
    assert (flat >= 0.5).all() and np.allclose(flat, 0.5, rtol=1e-9, atol=0)  # float64 angle term left
    with pytest.raises(TypeError, match="bfloat16, float16"):
        error_bound(x, CFG, dtype=np.int32)


def test_partial_rotary_features_pass_through_with_a_relative_bound(x):
    cfg = numrope.RopeConfig(head_dim=64, rotary_dim=16)
    b = error_bound(x, cfg, dtype="float16")
    rtol = 8 * 2.0**-11
    assert np.allclose(b[..., 16:], rtol * np.abs(x[..., 16:]) + 2 * 2.0**-24)


# -- the assertion ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_numrope_output_passes(x, dtype):
    xd = x.astype(dtype)
    assert_rope_allclose(numrope.apply_rope(xd, CFG, 100), xd, CFG, 100)


@pytest.mark.parametrize("dtype", NARROW)
def test_framework_output_passes_only_with_float32_angles(x, dtype):
    xd = in_dtype(x, dtype)
    positions = np.arange(64) * 2000
    y = emulate.apply_rope(xd, CFG, positions)
    assert_rope_allclose(y, xd, CFG, positions, float32_angles=True)
    if dtype != "bfloat16":
        with pytest.raises(AssertionError, match="precision: not a bug"):
            assert_rope_allclose(y, xd, CFG, positions)


def test_failure_message_names_the_mistake(x):
    xf = x.astype(np.float32)
    wrong = numrope.apply_rope(xf, numrope.RopeConfig(head_dim=64, base=10000.0))
    with pytest.raises(AssertionError, match=r"(?s)^layer 3\nRoPE mismatch.*furthest outside its bound.*- base:"):
        assert_rope_allclose(wrong, xf, CFG, err_msg="layer 3")


def test_tolerance_follows_the_dtype_of_actual(x):
    """A bfloat16 result is judged as bfloat16; the same values claimed as float32 are not close enough."""
    xb = in_dtype(x, "bfloat16")
    y = emulate.apply_rope(xb, CFG)
    assert y.dtype == ml_dtypes.bfloat16
    assert_rope_allclose(y, xb, CFG)
    with pytest.raises(AssertionError, match="float32"):
        assert_rope_allclose(y.astype(np.float32), xb, CFG)


def test_rtol_and_atol_override(x):
    xf = x.astype(np.float32)
    y = numrope.apply_rope(xf, CFG) * np.float32(1 + 1e-4)
    with pytest.raises(AssertionError):
        assert_rope_allclose(y, xf, CFG)
    assert_rope_allclose(y, xf, CFG, rtol=2e-4)
    assert_rope_allclose(y, xf, CFG, rtol=0.0, atol=1e-2)
    with pytest.raises(TypeError, match="atol"):
        assert_rope_allclose(y, xf, CFG, atol="0.1")


def test_inverse(x):
    assert_rope_allclose(numrope.apply_rope(x, CFG, inverse=True), x, CFG, inverse=True)
    with pytest.raises(AssertionError, match="direction"):
        assert_rope_allclose(numrope.apply_rope(x, CFG), x, CFG, inverse=True)


# -- inputs of any kind -----------------------------------------------------------------------


class ArrayOnly:
    def __init__(self, a):
        self._a = a

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self._a, dtype=dtype)


class DLPackOnly:
    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)


class BFloat16DLPack:
    """A bfloat16 DLPack producer, as a PyTorch or JAX bfloat16 tensor exports itself (strided view)."""

    dtype = "bfloat16"

    def __init__(self, values, transpose=False):
        bits = (np.asarray(values, ml_dtypes.bfloat16).view(np.uint16)).copy()
        self._bits = bits
        view = bits.T if transpose else bits
        self.shape = view.shape
        n = view.ndim
        self._shape = (ctypes.c_int64 * n)(*view.shape)
        self._strides = (ctypes.c_int64 * n)(*(s // 2 for s in view.strides))
        self._tensor = _DLTensor(
            data=bits.ctypes.data,
            device=_DLDevice(1, 0),
            ndim=n,
            dtype=_DLDataType(4, 16, 1),
            shape=self._shape,
            strides=self._strides,
            byte_offset=0,
        )
        self._name = b"dltensor"

    def __dlpack__(self, **kwargs):
        return _capsule_new(ctypes.addressof(self._tensor), self._name, None)

    def __dlpack_device__(self):
        return (1, 0)


def test_array_protocols(x):
    y = numrope.apply_rope(x.astype(np.float32), CFG)
    for wrap in (ArrayOnly, DLPackOnly):
        assert_rope_allclose(wrap(y), wrap(x.astype(np.float32)), CFG)
        with pytest.raises(AssertionError):
            assert_rope_allclose(wrap(x.astype(np.float32)), wrap(x.astype(np.float32)), CFG)


@pytest.mark.parametrize("transpose", [False, True])
def test_bfloat16_through_dlpack(rng, transpose):
    values = rng.standard_normal((6, 5))
    got = as_numpy(BFloat16DLPack(values, transpose), "t")
    expected = np.asarray(values, ml_dtypes.bfloat16).astype(np.float32)
    assert got.precision == "bfloat16" and got.array.dtype == np.float32
    np.testing.assert_array_equal(got.array, expected.T if transpose else expected)


def test_bfloat16_dlpack_output_is_judged_as_bfloat16(x):
    xb = in_dtype(x[0, :, 0], "bfloat16")[:, None, :]  # (seq, heads, dim)
    y = emulate.apply_rope(xb, CFG)
    assert_rope_allclose(BFloat16DLPack(np.asarray(y, np.float32)), xb, CFG)
    with pytest.raises(AssertionError, match="bfloat16"):
        assert_rope_allclose(BFloat16DLPack(np.asarray(xb, np.float32)), xb, CFG)


def test_unreadable_inputs(x):
    with pytest.raises(TypeError, match="numeric array"):
        assert_rope_allclose(np.array([object()] * 64, dtype=object), x, CFG)
    with pytest.raises(TypeError, match="floats"):
        assert_rope_allclose(x.astype(np.int64), x, CFG)


def test_torch_tensors():
    torch = pytest.importorskip("torch", reason="torch is not installed")
    cfg = numrope.RopeConfig(head_dim=16)
    x = torch.randn(1, 8, 2, 16, dtype=torch.bfloat16)
    y = emulate.apply_rope(x, cfg)  # read through DLPack, never through an import of torch
    assert_rope_allclose(torch.from_numpy(np.asarray(y, np.float32)).to(torch.bfloat16), x, cfg)
    needs_grad = torch.randn(1, 8, 2, 16, requires_grad=True)
    with pytest.raises(TypeError, match="detach"):
        assert_rope_allclose(needs_grad, needs_grad, cfg)


def test_every_option_of_compare_is_an_option_of_the_assertion(x):
    """offsets= and diagnose= reach compare: per-sequence starts are honoured, and no diagnosis is run."""
    xf = x.astype(np.float32)  # batch of 2
    starts = np.array([7, 300])
    rows = starts[:, None] + np.arange(xf.shape[1])  # each sequence's own positions, written out
    y = numrope.apply_rope(xf, CFG, rows)
    assert_rope_allclose(y, xf, CFG, offsets=starts)
    with pytest.raises(AssertionError, match="RoPE mismatch"):
        assert_rope_allclose(y, xf, CFG, offsets=starts[::-1])
    wrong = numrope.apply_rope(xf, numrope.RopeConfig(head_dim=64, base=10000.0))
    with pytest.raises(AssertionError) as failure:
        assert_rope_allclose(wrong, xf, CFG, diagnose=False)
    assert "- base:" not in str(failure.value)
    with pytest.raises(TypeError, match="unexpected keyword argument 'tolerance'"):
        assert_rope_allclose(y, xf, CFG, tolerance=1e-3)

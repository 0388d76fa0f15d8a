"""Turning any array a user has into NumPy, without importing the framework that made it.

Accepted: NumPy arrays (ml_dtypes' bfloat16 included), anything with ``__dlpack__`` (PyTorch CPU
tensors, JAX arrays, CuPy arrays through their host copy), anything with ``__array__``, and
nested sequences. bfloat16 from DLPack is read with ctypes (NumPy's ``from_dlpack`` has no
bfloat16) and widened exactly to float32; the name of the source precision travels with it so
that tolerances can follow it.
"""

from __future__ import annotations

import ctypes
import typing

import numpy as np

#: Precisions numrope knows how to judge: name -> number of explicit significand bits.
MANTISSA_BITS = {"bfloat16": 7, "float16": 10, "float32": 23, "float64": 52}
#: Smallest normal exponent of each precision (2**MIN_EXP is the smallest normal number).
MIN_EXP = {"bfloat16": -126, "float16": -14, "float32": -126, "float64": -1022}

_KDL_CPU = 1
_KDL_CPU_PINNED = 3
_KDL_BFLOAT = 4


class Converted(typing.NamedTuple):
    """A NumPy array and the name of the precision it came in (``"bfloat16"`` for widened bfloat16)."""

    array: np.ndarray
    precision: str


class _DLDevice(ctypes.Structure):
    _fields_ = (("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32))


class _DLDataType(ctypes.Structure):
    _fields_ = (("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16))


class _DLTensor(ctypes.Structure):
    # The first member of DLPack's DLManagedTensor (dlpack.h, v0.x layout, capsule "dltensor").
    _fields_ = (
        ("data", ctypes.c_void_p),
        ("device", _DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", _DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    )


_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = (ctypes.py_object, ctypes.c_char_p)


def is_bfloat16(dtype) -> bool:
    """Whether a NumPy dtype is ml_dtypes' bfloat16, recognised without importing ml_dtypes.

    ml_dtypes registers it as a 2-byte NumPy extension type named ``bfloat16`` (kind ``"V"``, the
    type character ``"E"``); the name and size are what every release since 0.2 has in common.
    """
    return dtype.name == "bfloat16" and dtype.itemsize == 2


def precision_name(dtype: np.dtype) -> str | None:
    """The precision name of a NumPy float dtype, or None for other dtypes."""
    dtype = np.dtype(dtype)
    if is_bfloat16(dtype):
        return "bfloat16"
    if dtype.kind == "f" and dtype.name in MANTISSA_BITS:
        return dtype.name
    return None


def bfloat16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    """Widen bfloat16 bit patterns (uint16) exactly to float32: bfloat16 is float32's top half."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _bfloat16_from_dlpack(obj, name) -> np.ndarray:
    """Copy a CPU bfloat16 DLPack tensor into a float32 array (exact)."""
    capsule = obj.__dlpack__()
    try:
        address = _capsule_pointer(capsule, b"dltensor")
    except ValueError as exc:  # pragma: no cover - a producer that only speaks versioned DLPack
        raise TypeError(f"{name}: cannot read its DLPack capsule ({exc})") from exc
    t = _DLTensor.from_address(address)
    if t.device.device_type not in (_KDL_CPU, _KDL_CPU_PINNED):
        raise TypeError(f"{name} is on a device (DLPack device type {t.device.device_type}); copy it to the CPU first")
    if (t.dtype.code, t.dtype.bits, t.dtype.lanes) != (_KDL_BFLOAT, 16, 1):
        raise TypeError(f"{name} has DLPack dtype code {t.dtype.code} with {t.dtype.bits} bits, not bfloat16")
    shape = tuple(t.shape[k] for k in range(t.ndim))
    if t.strides:
        strides = tuple(t.strides[k] for k in range(t.ndim))
    else:
        strides = tuple(int(np.prod(shape[k + 1 :], dtype=np.int64)) for k in range(t.ndim))
    if any(s < 0 for s in strides):
        raise TypeError(f"{name} has negative strides; pass a contiguous copy")
    if 0 in shape:
        return np.zeros(shape, np.float32)
    extent = 1 + sum((n - 1) * s for n, s in zip(shape, strides, strict=True))
    buffer = (ctypes.c_uint16 * extent).from_address(t.data + t.byte_offset)
    flat = np.frombuffer(buffer, dtype=np.uint16, count=extent)
    view = np.lib.stride_tricks.as_strided(flat, shape, tuple(2 * s for s in strides), writeable=False)
    out = bfloat16_bits_to_float32(np.array(view))  # copied while the capsule keeps the memory alive
    del capsule  # unconsumed: the producer's capsule destructor releases the tensor
    return out


def _from_device(obj, name) -> np.ndarray:
    try:
        from numba import cuda

        return cuda.as_cuda_array(obj).copy_to_host()
    except Exception as exc:
        raise TypeError(
            f"{name} is a GPU array and it could not be copied to the host ({exc}); copy it yourself "
            "(.cpu() in PyTorch, .get() in CuPy, np.asarray in JAX)"
        ) from exc


def as_numpy(obj, name: str = "array") -> Converted:
    """Any array-like as a NumPy array, with the name of its precision.

    Floating arrays come back as float16, float32 or float64 (bfloat16 widened exactly to float32,
    with ``precision="bfloat16"``); other dtypes as they are, with ``precision=""``.
    Raises TypeError with a hint where the object cannot be read.
    """
    if isinstance(obj, np.ndarray):
        arr = obj
    elif hasattr(obj, "__cuda_array_interface__"):
        arr = _from_device(obj, name)
    elif hasattr(obj, "__dlpack__") and not isinstance(obj, np.generic):
        try:
            arr = np.from_dlpack(obj)
        except (BufferError, TypeError, RuntimeError, ValueError) as exc:
            if "bfloat16" in str(getattr(obj, "dtype", "")).lower():
                return Converted(_bfloat16_from_dlpack(obj, name), "bfloat16")
            if hasattr(obj, "__array__"):
                try:
                    arr = np.asarray(obj)
                except Exception as exc2:
                    raise TypeError(f"{name} could not be read as an array: {exc2}") from exc
            else:
                hint = " (use .detach() first)" if "grad" in str(exc) else ""
                raise TypeError(f"{name} could not be read through DLPack: {exc}{hint}") from exc
    else:
        try:
            arr = np.asarray(obj)
        except Exception as exc:
            hint = " (use .detach() first)" if "grad" in str(exc) else ""
            raise TypeError(f"{name} could not be read as an array: {exc}{hint}") from exc
    if arr.dtype == object:
        raise TypeError(f"{name} must be a numeric array, got {type(obj).__name__} holding Python objects")
    precision = precision_name(arr.dtype)
    if precision == "bfloat16":
        arr = arr.astype(np.float32)
    return Converted(arr, precision or "")

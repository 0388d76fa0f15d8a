"""float16 and bfloat16 <-> float32 conversions on bit patterns: one source for every target.

The CPU kernels see float16 data as uint16 bit patterns.

Numba has no float16 type on the CPU. Where the compilation target converts in hardware (x86 with
F16C, every 64-bit ARM) the conversions are LLVM's own ``fpext``/``fptrunc`` of ``half``, which
vectorise to single instructions (``vcvtph2ps``/``vcvtps2ph``, ``fcvt``). Elsewhere they are
branch-free bit arithmetic, exact and rounding to nearest even all the same, which LLVM also
vectorises but at about a quarter of the speed.
"""

import functools
import platform

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from numrope.kernels.jit import njit

_U32 = np.uint32


# Both conversions are branch-free bit arithmetic (the selects below compile to SIMD blends), so
# that LLVM vectorises the float16 loops as it does the float32 ones; a lookup table would need a
# gather per element. Numba's integer arithmetic widens to 64 bits, hence the _U32(...) wrappers.
@njit
def f16_bits_to_f32_arith(h):
    """The float32 equal to the IEEE binary16 bit pattern ``h`` (exact: every float16 is a float32)."""
    h = _U32(h)
    bits = _U32(_U32(h & _U32(0x7FFF)) << _U32(13))  # exponent and mantissa, aligned for float32
    exponent = _U32(bits & _U32(0x0F800000))
    bits = _U32(bits + _U32(112 << 23))  # rebias 15 -> 127
    # A subnormal m * 2**-24 becomes (1 + m * 2**-10) * 2**-14 - 2**-14, which float32 holds exactly.
    subnormal = np.float32(_U32(bits + _U32(1 << 23)).view(np.float32) - _U32(113 << 23).view(np.float32))
    if exponent == _U32(0x0F800000):  # inf, NaN: all-ones exponent
        bits = _U32(bits + _U32(112 << 23))
    elif exponent == _U32(0):
        bits = subnormal.view(_U32)
    return _U32(bits | _U32(_U32(h & _U32(0x8000)) << _U32(16))).view(np.float32)


@njit
def f32_to_f16_bits_arith(value):
    """IEEE binary16 bit pattern nearest to a float32 (ties to even; overflow to infinity)."""
    bits = np.float32(value).view(_U32)
    sign = _U32(bits & _U32(0x80000000))
    bits = _U32(bits ^ sign)
    # Normal: rebias, add just under half a float16 ulp plus the kept lowest bit (ties to even),
    # and drop 13 bits; a carry into the exponent, up to infinity, is the correct rounding.
    odd = _U32(_U32(bits >> _U32(13)) & _U32(1))
    normal = _U32(_U32(bits + _U32((((15 - 127) << 23) + 0xFFF) & 0xFFFFFFFF) + odd) >> _U32(13))
    # Subnormal (< 2**-14): adding 0.5 leaves the value in units of 2**-24 in the low mantissa
    # bits, rounded to nearest even by the float32 addition itself.
    subnormal = _U32(np.float32(bits.view(np.float32) + np.float32(0.5)).view(_U32) - _U32(126 << 23))
    result = normal
    if bits < _U32(113 << 23):
        result = subnormal
    if bits >= _U32(143 << 23):  # >= 65536, inf, NaN (kept quiet)
        result = _U32(0x7E00) if bits > _U32(0x7F800000) else _U32(0x7C00)
    return np.uint16(_U32(result | _U32(sign >> _U32(16))))


@intrinsic
def f16_bits_to_f32_llvm(typingctx, h):
    """As :func:`f16_bits_to_f32_arith`, by LLVM's ``fpext half to float``."""
    if h != types.uint16:
        return None

    def codegen(context, builder, signature, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

    return types.float32(types.uint16), codegen


@intrinsic
def f32_to_f16_bits_llvm(typingctx, value):
    """As :func:`f32_to_f16_bits_arith`, by LLVM's ``fptrunc float to half``."""
    if value != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.fptrunc(args[0], ir.HalfType()), ir.IntType(16))

    return types.uint16(types.float32), codegen


def _x86_target_has(feature) -> bool:
    """Whether the x86-64 CPU Numba compiles for has ``feature`` (an LLVM feature name): a named target's
    features where one is set (portable caches), else this host's; False off x86-64."""
    from numba.core import config

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    if config.CPU_NAME or config.CPU_FEATURES:  # a named target, not this host
        return f"+{feature}" in (config.CPU_FEATURES or "")
    from llvmlite import binding

    return bool(binding.get_host_cpu_features().get(feature, False))


def target_converts_half() -> bool:
    """Whether the CPU Numba compiles for converts float16 in hardware.

    Without that LLVM would lower ``half`` conversions to library calls that Numba's JIT need not
    resolve. Numba's disk cache is keyed by the target CPU and its features, so kernels compiled
    with either choice are only ever reused on a CPU that made the same one.
    """
    return platform.machine().lower() in ("aarch64", "arm64") or _x86_target_has("f16c")


@njit(inline="always")
def bf16_bits_to_f32(bits):
    """The float32 whose upper half is this bfloat16 bit pattern (exact)."""
    return np.uint32(np.uint32(bits) << np.uint32(16)).view(np.float32)


@njit(inline="always")
def f32_to_bf16_bits(value):
    """bfloat16 bit pattern nearest to a float32 (ties to even; overflow to infinity; NaN kept quiet).

    The one bfloat16 rounding of numrope: the GPU kernels store with it and
    :func:`round_to_bfloat16` (framework emulation) applies it to arrays.
    """
    bits = np.float32(value).view(np.uint32)
    # add just under half an ulp plus the kept lowest bit (ties to even); a carry into the exponent, up to
    # infinity, is the correct rounding, and none reaches the sign below NaN: |bits| + 0x8000 <= 0x7F808000.
    # Adding to the bits with their sign is the addition to the magnitude with the sign kept, in fewer
    # operations (this rounding is most of a bfloat16 kernel's arithmetic).
    nearest = np.uint32(bits + np.uint32(0x7FFF) + np.uint32(np.uint32(bits >> np.uint32(16)) & np.uint32(1)))
    # NaN (the magnitude above infinity's, tested with the sign shifted out): kept quiet. Selected by a mask,
    # not a branch or a conditional expression: inlined into the CPU kernels' loops this vectorises, and
    # Numba's inliner loses track of a conditional's phi variables.
    nan = np.uint32(np.uint32(0xFFFFFFFF) * np.uint32(np.uint32(bits << np.uint32(1)) > np.uint32(0xFF000000)))
    quiet_nan = np.uint32(bits | np.uint32(0x00400000))
    return np.uint16(np.uint32(nearest ^ np.uint32(np.uint32(nearest ^ quiet_nan) & nan)) >> np.uint32(16))


def target_converts_bfloat16() -> bool:
    """Whether the CPU Numba compiles for rounds float32 to bfloat16 in hardware (x86's AVX512-BF16:
    ``vcvtne2ps2bf16``, two vectors of 16 float32 to one of 32 bfloat16, to nearest even), chosen as
    :func:`target_converts_half` chooses F16C."""
    return _x86_target_has("avx512bf16")


#: Whether :func:`f32_to_bf16_bits_ir` rounds by ``vcvtne2ps2bf16`` here.
BFLOAT16_IN_HARDWARE = target_converts_bfloat16()


class _BFloat(ir.Type):
    """LLVM's ``bfloat``, which llvmlite's IR builder does not name: the element of the conversion's result."""

    def _to_string(self):
        return "bfloat"

    def __eq__(self, other):
        return isinstance(other, _BFloat)

    def __hash__(self):
        return hash(_BFloat)


@functools.cache
def _conversion_element():
    """The element type of the conversion's result as this LLVM declares it: ``bfloat`` (LLVM 17 on), or ``i16``
    (before), found by verifying a module that calls it."""
    from llvmlite import binding

    for element in (_BFloat(), ir.IntType(16)):
        module = ir.Module()
        f32x16 = ir.VectorType(ir.FloatType(), 16)
        convert = module.declare_intrinsic(
            "llvm.x86.avx512bf16.cvtne2ps2bf16.512", fnty=ir.FunctionType(ir.VectorType(element, 32), [f32x16, f32x16])
        )
        caller = ir.Function(module, ir.FunctionType(ir.VectorType(element, 32), [f32x16]), "probe")
        builder = ir.IRBuilder(caller.append_basic_block())
        builder.ret(builder.call(convert, [caller.args[0], caller.args[0]]))
        try:
            binding.parse_assembly(str(module)).verify()
        except RuntimeError:
            continue
        return element
    raise NotImplementedError("this LLVM declares vcvtne2ps2bf16's result neither as bfloat nor as i16")


def _bf16_by_arithmetic(builder, value):
    """The steps of :func:`f32_to_bf16_bits` on a vector."""
    lanes = value.type.count
    i32 = ir.VectorType(ir.IntType(32), lanes)

    def const(v):
        return ir.Constant(i32, [v] * lanes)

    bits = builder.bitcast(value, i32)
    odd = builder.and_(builder.lshr(bits, const(16)), const(1))
    nearest = builder.add(builder.add(bits, const(0x7FFF)), odd)
    nan = builder.icmp_unsigned(">", builder.shl(bits, const(1)), const(0xFF000000))
    rounded = builder.select(nan, builder.or_(bits, const(0x00400000)), nearest)
    return builder.trunc(builder.lshr(rounded, const(16)), ir.VectorType(ir.IntType(16), lanes))


def _bf16_by_hardware(builder, value):
    """``vcvtne2ps2bf16`` (32 lanes) or ``vcvtneps2bf16`` (16): the same bits as the arithmetic (NaN too, kept
    quiet with its upper payload) except where a float32 is subnormal, which they read as zero. A vector
    holding one takes the arithmetic."""
    lanes = value.type.count
    f32x16, i32 = ir.VectorType(ir.FloatType(), 16), ir.IntType(32)
    module = builder.module
    result = ir.VectorType(_conversion_element(), lanes)
    if lanes == 32:
        parts = [
            builder.shuffle_vector(value, value, ir.Constant(ir.VectorType(i32, 16), list(range(first, first + 16))))
            for first in (0, 16)
        ]
        name, operands = "llvm.x86.avx512bf16.cvtne2ps2bf16.512", parts[::-1]  # the high half first
    else:
        parts = [value]
        name, operands = "llvm.x86.avx512bf16.cvtneps2bf16.512", parts
    convert = module.declare_intrinsic(name, fnty=ir.FunctionType(result, [f32x16] * len(operands)))
    fast = builder.bitcast(builder.call(convert, operands), ir.VectorType(ir.IntType(16), lanes))
    classify = module.declare_intrinsic(
        "llvm.x86.avx512.fpclass.ps.512", fnty=ir.FunctionType(ir.VectorType(ir.IntType(1), 16), [f32x16, i32])
    )
    subnormal = ir.Constant(i32, 0x20)  # fpclass's category bit for a subnormal
    found = [builder.bitcast(builder.call(classify, [part, subnormal]), ir.IntType(16)) for part in parts]
    found = found[0] if len(found) == 1 else builder.or_(*found)
    any_subnormal = builder.icmp_unsigned("!=", found, ir.Constant(ir.IntType(16), 0))
    with builder.if_else(any_subnormal, likely=False) as (rare, usual):
        with rare:
            exact = _bf16_by_arithmetic(builder, value)
            rare_block = builder.block
        with usual:
            usual_block = builder.block
    merged = builder.phi(fast.type)
    merged.add_incoming(exact, rare_block)
    merged.add_incoming(fast, usual_block)
    return merged


def f32_to_bf16_bits_ir(builder, value):
    """:func:`f32_to_bf16_bits` lane by lane, for the vector kernels (:mod:`numrope.kernels.simd`): a vector
    of float32 in, the vector of its bfloat16 bit patterns (i16) out: the same bits, by the same steps in
    LLVM IR, or for 16 or 32 lanes (or a multiple of 64) by the CPU's conversion where it has one
    (:data:`BFLOAT16_IN_HARDWARE`): by the arithmetic, 64 lanes (:data:`numrope.kernels.simd.half_pairs2`) put the
    bfloat16 half layout at 0.77 - 0.82 of the copy floor on the Xeon, against the 32-lane kernel's 0.86 - 0.92."""
    lanes = value.type.count
    if BFLOAT16_IN_HARDWARE and lanes in (16, 32):
        return _bf16_by_hardware(builder, value)
    if BFLOAT16_IN_HARDWARE and lanes % 64 == 0:  # each half so, then the two joined (two vectors of pairs)
        i32 = ir.IntType(32)
        low, high = (
            f32_to_bf16_bits_ir(
                builder,
                builder.shuffle_vector(
                    value, value, ir.Constant(ir.VectorType(i32, lanes // 2), list(range(k, k + lanes // 2)))
                ),
            )
            for k in (0, lanes // 2)
        )
        return builder.shuffle_vector(low, high, ir.Constant(ir.VectorType(i32, lanes), list(range(lanes))))
    return _bf16_by_arithmetic(builder, value)


@njit(inline="always")
def f64_to_f32_odd(value):
    """A float64 rounded to float32 by round-to-odd: truncated, the last bit set where it was inexact.

    Rounding to odd at 24 bits and then to nearest at bfloat16's 8 is the nearest bfloat16 to the
    float64, ties to even, without the double rounding of going through float32 to nearest
    (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums: proved algorithms using
    rounding to odd", IEEE Trans. Computers 57(4), 2008: any precision of at least p + 2 bits).
    """
    rounded = np.float32(value)
    back = np.float64(rounded)
    inexact = np.uint32(back != value)  # NaN too, which stays NaN
    # rounded away from zero: one step back towards it (sign and magnitude: the magnitude's bits); no
    # conditional expressions, as in f32_to_bf16_bits
    away = np.uint32(abs(back) > abs(value))
    return np.uint32(np.uint32(rounded.view(np.uint32) - away) | inexact).view(np.float32)


@njit(inline="always")
def f64_to_bf16_bits(value):
    """bfloat16 bit pattern nearest to a float64 (ties to even), rounded once: round-to-odd to float32
    (:func:`f64_to_f32_odd`, no rounding of its own at bfloat16's precision), then :func:`f32_to_bf16_bits`."""
    return f32_to_bf16_bits(f64_to_f32_odd(value))


@njit
def _round_to_bfloat16(flat, out):
    for n in range(flat.size):
        out[n] = bf16_bits_to_f32(f32_to_bf16_bits(flat[n]))


def round_to_bfloat16(a32: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16 (ties to even), returned as float32."""
    flat = np.ascontiguousarray(a32, dtype=np.float32).reshape(-1)
    out = np.empty_like(flat)
    _round_to_bfloat16(flat, out)
    return out.reshape(np.shape(a32))


# Under NUMBA_DISABLE_JIT the intrinsics cannot run: Python executes the bit arithmetic instead.
if target_converts_half() and not numba.config.DISABLE_JIT:
    f16_bits_to_f32, f32_to_f16_bits = f16_bits_to_f32_llvm, f32_to_f16_bits_llvm
else:
    f16_bits_to_f32, f32_to_f16_bits = f16_bits_to_f32_arith, f32_to_f16_bits_arith

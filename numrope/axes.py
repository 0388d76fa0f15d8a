"""Multi-axis RoPE: which coordinate and which frequency each rotating pair uses.

Plain RoPE turns pair ``i`` of a token at position ``m`` by ``m * theta_i``. Vision-language
models give each token a vector of coordinates instead -- ``(t, h, w)``: time, row and column --
and split the pairs between the coordinates. An :class:`AxisMap` says, per pair, which coordinate
it reads and which frequency it turns with:

    angle of pair ``i`` = ``positions[axis[i]] * theta[freq[i]]``

where ``theta_k = base**(-2k / rotary_dim)`` are the configuration's frequencies (after scaling).
Give one to :class:`numrope.RopeConfig` (``axes=``); the rotation itself, the pair layout and the
pass-through features are those of plain RoPE. A token whose coordinates are all equal (a text
token) is rotated exactly as plain RoPE with the frequencies ``theta[freq[i]]`` rotates it.

The builders below give the maps of the model families in Hugging Face transformers 5.24:

=========================  ======================================================  ==============
builder                    models                                                  layout
=========================  ======================================================  ==============
:func:`sectioned`          Qwen2-VL, Qwen2.5-VL, Qwen2.5-Omni, PaddleOCR-VL text;  half
                           GLM-4.1V (interleaved), GLM-4.5V (half) text, partial
:func:`interleaved`        Qwen3-VL, Qwen3-VL-MoE, Qwen3-Omni-MoE, Qwen3.5 text    half
:func:`ernie`              Ernie 4.5 VL text                                       interleaved
:func:`axial`              the vision towers of the above; Llama 4 vision,         half or
                           SAM 3 (transformers' ``"axial"`` rope type)             interleaved
:func:`pixtral`            Pixtral vision                                          half
=========================  ======================================================  ==============
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import numpy as np

__all__ = ["TEXT_AXES", "AxisMap", "axial", "ernie", "interleaved", "pixtral", "sectioned"]

#: The coordinate names of the vision-language models' text side: time, row (height), column (width).
TEXT_AXES = ("t", "h", "w")


def _int_tuple(name, values) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of ints, got {values!r}")
    try:
        items = list(values)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of ints, got {type(values).__name__}") from None
    out = []
    for v in items:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must hold ints, got {type(v).__name__} {v!r}")
        out.append(int(v))
    return tuple(out)


@dataclasses.dataclass(frozen=True, repr=False)
class AxisMap:
    """Which coordinate axis and which frequency each rotating pair uses: the data of a multi-axis RoPE.

    Parameters
    ----------
    axis : sequence of int
        One entry per rotating pair (``rotary_dim // 2`` of them): the coordinate axis, ``0 ..
        n_axes - 1``, whose coordinate turns the pair.
    freq : sequence of int, optional
        One entry per pair: the index ``k`` of the frequency ``theta_k = base**(-2k / rotary_dim)``
        (after scaling) the pair turns with. Defaults to ``0, 1, 2, ...``: pair ``i`` keeps the
        frequency of plain RoPE.
    names : sequence of str, optional
        The names of the coordinate axes, one per axis; their number is ``n_axes``. Defaults to
        ``("0", "1", ...)``, as many as ``max(axis) + 1``.

    Raises
    ------
    TypeError
        Entries that are not ints, names that are not strings.
    ValueError
        ``axis`` and ``freq`` of different lengths or empty, an axis outside ``0 .. n_axes - 1``, a
        negative frequency index, repeated or empty names.

    Notes
    -----
    Two maps are equal when their axes, frequencies and names are; how a map was built does not
    count. :class:`numrope.RopeConfig` checks that the map has one entry per pair and that every
    frequency index is below ``rotary_dim // 2``.

    Examples
    --------
    >>> from numrope.axes import AxisMap, sectioned
    >>> m = sectioned([1, 2, 1])
    >>> m.axis, m.freq, m.names
    ((0, 1, 1, 2), (0, 1, 2, 3), ('t', 'h', 'w'))
    >>> m == AxisMap([0, 1, 1, 2], names=("t", "h", "w"))
    True
    >>> m.pattern()
    'thhw'
    """

    axis: tuple[int, ...]
    freq: tuple[int, ...] | None = None
    names: tuple[str, ...] | None = None

    def __post_init__(self):
        axis = _int_tuple("axis", self.axis)
        if not axis:
            raise ValueError("axis must have one entry per rotating pair, got none")
        freq = tuple(range(len(axis))) if self.freq is None else _int_tuple("freq", self.freq)
        if len(freq) != len(axis):
            raise ValueError(f"axis and freq must have one entry per pair each, got {len(axis)} and {len(freq)}")
        if min(freq) < 0:
            raise ValueError(f"frequency indices must be non-negative, got {min(freq)}")
        if self.names is None:
            names = tuple(str(k) for k in range(max(max(axis), 0) + 1))
        else:
            if isinstance(self.names, str):
                raise TypeError(f"names must be a sequence of strings, got {self.names!r}")
            names = tuple(self.names)
            if not all(isinstance(n, str) and n for n in names):
                raise TypeError(f"names must be non-empty strings, got {names!r}")
            if len(set(names)) != len(names):
                raise ValueError(f"axis names must differ, got {names!r}")
        if min(axis) < 0 or max(axis) >= len(names):
            bad = min(axis) if min(axis) < 0 else max(axis)
            raise ValueError(
                f"axis {bad} is not one of the {len(names)} coordinate axes {names} (0 .. {len(names) - 1})"
            )
        object.__setattr__(self, "axis", axis)
        object.__setattr__(self, "freq", freq)
        object.__setattr__(self, "names", names)

    def __len__(self) -> int:
        return len(self.axis)

    def __repr__(self) -> str:
        runs, start = [], 0
        for i in range(1, len(self.axis) + 1):
            if i == len(self.axis) or self.axis[i] != self.axis[start]:
                runs.append(f"{self.names[self.axis[start]]}*{i - start}")
                start = i
        freq = "identity" if self.freq == tuple(range(len(self.freq))) else list(self.freq)
        return f"AxisMap({' '.join(runs)}, freq={freq}, names={self.names})"

    @property
    def n_axes(self) -> int:
        """The number of coordinates each token has."""
        return len(self.names)

    @functools.cached_property
    def axis_index(self) -> np.ndarray:
        """``axis`` as a read-only int64 array (what the kernels index with)."""
        return _frozen(self.axis)

    @functools.cached_property
    def freq_index(self) -> np.ndarray:
        """``freq`` as a read-only int64 array."""
        return _frozen(self.freq)

    def pairs_of(self, axis) -> np.ndarray:
        """The pairs that read coordinate ``axis`` (an index or a name), in increasing order.

        Examples
        --------
        >>> from numrope.axes import interleaved
        >>> interleaved([1, 1, 1]).pairs_of("h").tolist()
        [1]
        """
        if isinstance(axis, str):
            if axis not in self.names:
                raise ValueError(f"no axis named {axis!r}; the axes are {self.names}")
            axis = self.names.index(axis)
        return np.flatnonzero(self.axis_index == axis)

    def pattern(self) -> str:
        """The axis of each pair as one string: the first letter of each axis name, pair by pair."""
        return "".join(self.names[a][0] for a in self.axis)

    def counts(self) -> tuple[int, ...]:
        """How many pairs read each axis, in axis order."""
        return tuple(int(c) for c in np.bincount(self.axis_index, minlength=self.n_axes))


def _frozen(values) -> np.ndarray:
    a = np.array(values, dtype=np.int64)
    a.flags.writeable = False
    return a


def _sections(sections, n=None) -> tuple[int, ...]:
    sec = _int_tuple("sections", sections)
    if n is not None and len(sec) != n:
        raise ValueError(f"sections must have {n} entries, got {len(sec)}: {list(sec)}")
    if not sec or min(sec) < 0 or sum(sec) == 0:
        raise ValueError(f"sections must be non-negative pair counts, not all zero, got {list(sec)}")
    return sec


def _names(names, n) -> tuple[str, ...]:
    names = tuple(names)
    if len(names) != n:
        raise ValueError(f"give {n} axis names, got {names!r}")
    return names


def sectioned(sections: Sequence[int], names: Sequence[str] = TEXT_AXES) -> AxisMap:
    """Contiguous sections of pairs, section ``k`` reading axis ``k``: M-RoPE of Qwen2-VL.

    Parameters
    ----------
    sections : sequence of int
        ``mrope_section``: how many pairs each axis gets, in axis order; they sum to the number
        of pairs.
    names : sequence of str, default ("t", "h", "w")
        One name per section.

    Returns
    -------
    AxisMap
        Pair ``i`` reads the axis of the section it falls in and keeps frequency ``i``.

    Notes
    -----
    transformers 5.24 ``Qwen2VLRotaryEmbedding.recomposition_frequencies``
    (``models/qwen2_vl/modeling_qwen2_vl.py``: the frequencies split by ``mrope_section``, section
    ``i`` taken from coordinate row ``i % 3``), shared by Qwen2.5-VL, Qwen2.5-Omni and
    PaddleOCR-VL with the ``"half"`` layout, by GLM-4.5V (``glm4v_moe``) with the ``"half"``
    layout over the rotary part, and by GLM-4.1V (``glm4v``, GLM-OCR) with the
    ``"interleaved"`` layout (``repeat_interleave(2)`` and ``rotate_half_llm``) over the rotary
    part. Qwen2-VL paper: Wang et al. 2024, "Qwen2-VL", section 2.1.

    Examples
    --------
    >>> from numrope.axes import sectioned
    >>> sectioned([16, 24, 24]).counts()
    (16, 24, 24)
    """
    sec = _sections(sections)
    names = _names(names, len(sec))
    axis = [k for k, s in enumerate(sec) for _ in range(s)]
    return AxisMap(axis, names=names)


def interleaved(sections: Sequence[int], n_pairs: int | None = None, names: Sequence[str] = TEXT_AXES) -> AxisMap:
    """Interleaved M-RoPE of Qwen3-VL: ``t, h, w, t, h, w, ...``, then ``t`` alone.

    Parameters
    ----------
    sections : sequence of 3 int
        ``mrope_section`` ``(s_t, s_h, s_w)``.
    n_pairs : int, optional
        The number of rotating pairs (``rotary_dim // 2``); defaults to ``sum(sections)``.
    names : sequence of 3 str, default ("t", "h", "w")

    Returns
    -------
    AxisMap
        Pair ``i`` reads ``h`` where ``i % 3 == 1`` and ``i < 3 s_h``, ``w`` where ``i % 3 == 2``
        and ``i < 3 s_w``, and ``t`` otherwise; it keeps frequency ``i``.

    Notes
    -----
    transformers 5.24 ``Qwen3VLTextRotaryEmbedding.recomposition_frequencies``
    (``models/qwen3_vl/modeling_qwen3_vl.py``), shared by Qwen3-VL-MoE, Qwen3-Omni-MoE and
    Qwen3.5; ``s_t`` is not read (the ``t`` pairs are the rest), and neither is the config's
    ``mrope_interleaved`` flag: these models always interleave.

    Examples
    --------
    >>> from numrope.axes import interleaved
    >>> interleaved([2, 2, 1], n_pairs=6).pattern()
    'thwtht'
    """
    s_t, s_h, s_w = _sections(sections, 3)
    n = s_t + s_h + s_w if n_pairs is None else n_pairs
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValueError(f"n_pairs must be a positive int, got {n_pairs!r}")
    i = np.arange(int(n))
    axis = np.zeros(int(n), dtype=np.int64)
    axis[(i % 3 == 1) & (i < 3 * s_h)] = 1
    axis[(i % 3 == 2) & (i < 3 * s_w)] = 2
    return AxisMap(axis.tolist(), names=_names(names, 3))


def ernie(sections: Sequence[int] = (22, 22, 20), names: Sequence[str] = TEXT_AXES) -> AxisMap:
    """Ernie 4.5 VL text: ``h, w`` alternating over the first ``s_0 + s_1`` pairs, then ``t``.

    Parameters
    ----------
    sections : sequence of 3 int, default (22, 22, 20)
        ``mrope_section`` ``(s_0, s_1, s_2)``: the ``h`` pairs, the ``w`` pairs (``s_0 == s_1``)
        and the ``t`` pairs.
    names : sequence of 3 str, default ("t", "h", "w")

    Returns
    -------
    AxisMap
        Pair ``j < s_0 + s_1`` reads ``h`` for even ``j`` and ``w`` for odd ``j``; the other pairs
        read ``t``. Every pair keeps frequency ``j``.

    Notes
    -----
    transformers 5.24 ``Ernie4_5_VLMoeTextRotaryEmbedding`` (``models/ernie4_5_vl_moe/
    modeling_ernie4_5_vl_moe.py``): ``compute_default_rope_parameters`` permutes the first
    ``s_0 + s_1`` frequencies (even ones first) and ``recomposition_frequencies`` interleaves the
    ``h`` and ``w`` halves back, so each pair keeps its own frequency; the pairs are adjacent
    features (``rotate_half_text``, ``repeat_interleave(2)``).

    Examples
    --------
    >>> from numrope.axes import ernie
    >>> ernie([2, 2, 1]).pattern()
    'hwhwt'
    """
    s0, s1, s2 = _sections(sections, 3)
    if s0 != s1:
        raise ValueError(
            f"Ernie 4.5 VL interleaves h and w pair by pair: mrope_section[0] == [1] is needed, got {s0}, {s1}"
        )
    axis = [(1 if j % 2 == 0 else 2) if j < s0 + s1 else 0 for j in range(s0 + s1 + s2)]
    return AxisMap(axis, names=_names(names, 3))


def _halves(name, n_pairs, names, second_freq) -> AxisMap:
    """The first half of the pairs reads axis 0 with frequencies ``0, 2, 4, ..``; the second half axis 1
    with the same frequencies plus ``second_freq``."""
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, (int, np.integer)) or n_pairs <= 0 or n_pairs % 2:
        raise ValueError(f"{name} splits the pairs in two: n_pairs must be a positive even int, got {n_pairs!r}")
    half = int(n_pairs) // 2
    freq = [2 * i for i in range(half)]
    return AxisMap([0] * half + [1] * half, freq + [f + second_freq for f in freq], names=_names(names, 2))


def axial(n_pairs: int, names: Sequence[str] = ("h", "w")) -> AxisMap:
    """2-D axial RoPE of vision encoders: the first half of the pairs reads one axis, the second the other.

    Parameters
    ----------
    n_pairs : int
        The number of rotating pairs (``head_dim // 2``), even.
    names : sequence of 2 str, default ("h", "w")
        The two axes: ``("h", "w")`` (row, column) for the Qwen-family vision towers,
        ``("x", "y")`` (column, row) for Llama 4 vision and SAM 3.

    Returns
    -------
    AxisMap
        Pair ``i < n_pairs / 2`` reads axis 0 with frequency ``2 i``; pair ``n_pairs / 2 + i``
        reads axis 1 with frequency ``2 i``: both axes turn with ``base**(-4i / head_dim)``.

    Notes
    -----
    transformers 5.24 ``compute_axial_rope_parameters`` (``rope_type: "axial"``, frequencies
    ``1 / base**(arange(0, d/2, 2) / (d/2))``) with ``recomposition_frequencies`` concatenating
    the two axes' halves: ``Qwen2VLVisionRotaryEmbedding`` and its copies in Qwen2.5-VL,
    Qwen2.5-Omni, Qwen3-VL, GLM-4V and Ernie 4.5 VL (``"half"`` layout, rows ``(h, w)``);
    ``Sam3ViTRotaryEmbedding`` (``"interleaved"`` layout, rows ``(x, y)``, ``models/sam3``).
    Llama 4 vision (``Llama4VisionRotaryEmbedding``, ``models/llama4``) builds the same table from
    ``1 / base**(arange(0, d/2, 2) / (d/2))`` and complex pairs (``"interleaved"``), with the
    coordinates ``(column + 1, row + 1)`` and the class token at ``(0, 0)``.

    Examples
    --------
    >>> from numrope.axes import axial
    >>> m = axial(4)
    >>> m.axis, m.freq
    ((0, 0, 1, 1), (0, 2, 0, 2))
    """
    return _halves("axial", n_pairs, names, 0)


def pixtral(n_pairs: int, names: Sequence[str] = ("h", "w")) -> AxisMap:
    """Pixtral's 2-D RoPE: even-indexed frequencies for the rows, odd-indexed ones for the columns.

    Parameters
    ----------
    n_pairs, names
        As for :func:`axial`.

    Returns
    -------
    AxisMap
        Pair ``i < n_pairs / 2`` reads ``h`` with frequency ``2 i``; pair ``n_pairs / 2 + i``
        reads ``w`` with frequency ``2 i + 1``.

    Notes
    -----
    transformers 5.24 ``PixtralVisionRotaryEmbedding`` (``models/pixtral/modeling_pixtral.py``):
    the frequencies ``1 / base**(arange(0, d, 2) / d)`` split into ``freqs[::2]`` for the rows and
    ``freqs[1::2]`` for the columns, concatenated and used with ``rotate_half``.

    Examples
    --------
    >>> from numrope.axes import pixtral
    >>> pixtral(4).freq
    (0, 2, 1, 3)
    """
    return _halves("pixtral", n_pairs, names, 1)

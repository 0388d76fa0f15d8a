"""The RoPE configuration: head size, base, rotary part, pair layout and scaling variant."""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from numrope.axes import AxisMap
    from numrope.variants import RopeScaling

LAYOUTS = ("half", "interleaved", "interleaved_in_half_out")

#: numrope's cos and sin of ``m * theta`` are exact for ``|m * theta|`` below this many radians.
MAX_ANGLE = 2.0**53
#: Positions must be below this in magnitude: float64 holds every integer up to it, no further.
MAX_POSITION = 2**53


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class RopeConfig:
    """How to rotate query and key features: an immutable description of one model's RoPE.

    Parameters
    ----------
    head_dim : int
        Size of one attention head, the last axis of the arrays RoPE is applied to. Must be even.
    base : float, default 10000.0
        The frequency base: pair ``i`` rotates by ``m * base**(-2i / rotary_dim)`` at position ``m``.
        Called ``rope_theta`` in Hugging Face configs. Must be positive and finite.
    rotary_dim : int, optional
        How many leading features of each head rotate (partial rotary, as in GPT-NeoX and Phi).
        Defaults to ``head_dim``; must be even and at most ``head_dim``. Features from
        ``rotary_dim`` on pass through unchanged.
    layout : {"half", "interleaved", "interleaved_in_half_out"}, default "half"
        Which features form a pair. ``"half"`` pairs feature ``i`` with ``i + rotary_dim/2`` (the
        ``rotate_half`` form of GPT-NeoX and Hugging Face transformers); ``"interleaved"`` pairs
        ``2i`` with ``2i + 1`` (the RoFormer paper, GPT-J and Meta's complex-number form).
        ``"interleaved_in_half_out"`` reads pair ``i`` from features ``2i, 2i + 1`` and writes it to
        ``i, i + rotary_dim/2`` (transformers' ``apply_rotary_pos_emb_interleave`` of DeepSeek-V3 and
        its kin): the interleaved rotation followed by a fixed permutation of the output, which
        queries and keys share, so that ``q . k`` is that of ``"interleaved"``. See :meth:`pair_indices`.
    scaling : numrope.variants.RopeScaling, optional
        A long-context scaling variant (linear, NTK, YaRN, ...). ``None`` is plain RoPE.
    axes : numrope.axes.AxisMap, optional
        Multi-axis RoPE (M-RoPE of vision-language models, 2-D RoPE of vision encoders): which
        coordinate and which frequency each pair uses (one entry per pair). Positions are then
        coordinate vectors, ``(n_axes, ..., seq)``; see :mod:`numrope.axes`. ``None`` is one axis.
    rotary_offset : int, default 0
        The first rotating feature: features ``rotary_offset .. rotary_offset + rotary_dim - 1``
        rotate, the others pass through. Multi-head latent attention (DeepSeek-V2/V3) rotates the
        last ``qk_rope_head_dim`` features of each head: ``rotary_offset = head_dim - rotary_dim``.
    direction : {1, -1}, default 1
        ``-1`` rotates by ``-m theta_i`` (every frequency negated), as nanochat's ``rotate_half``
        does; ``q . k`` then depends on ``n - m`` with the opposite sign.

    Raises
    ------
    TypeError
        If ``head_dim`` or ``rotary_dim`` is not an int, ``scaling`` is not a scaling variant or
        ``axes`` not an AxisMap.
    ValueError
        If ``head_dim`` or ``rotary_dim`` is odd or not positive, ``rotary_offset + rotary_dim > head_dim``,
        ``rotary_offset`` is negative, ``direction`` is not 1 or -1,
        ``base`` is not a positive finite number, ``layout`` is unknown, or ``axes`` has not
        one entry per pair or indexes a frequency past the last; if a frequency is not finite or
        reaches 2**53 radians per position (``base=1e-300``, a linear factor of ``1e-320``).

    Examples
    --------
    >>> import numrope
    >>> cfg = numrope.RopeConfig(head_dim=64, rotary_dim=32)
    >>> cfg.n_pairs
    16
    >>> float(cfg.inv_freq()[1])  # 10000 ** (-2 / 32)
    0.5623413251903491
    """

    head_dim: int
    base: float = 10000.0
    rotary_dim: int | None = None
    layout: str = "half"
    scaling: RopeScaling | None = None
    axes: AxisMap | None = None
    rotary_offset: int = 0
    direction: int = 1

    def __post_init__(self):
        head_dim = _check_positive_int("head_dim", self.head_dim)
        if head_dim % 2:
            raise ValueError(f"head_dim must be even, got {head_dim}")
        rotary_dim = head_dim if self.rotary_dim is None else self.rotary_dim
        rotary_dim = _check_positive_int("rotary_dim", rotary_dim)
        if rotary_dim % 2:
            raise ValueError(f"rotary_dim must be even (features rotate in pairs), got {rotary_dim}")
        if rotary_dim > head_dim:
            raise ValueError(f"rotary_dim ({rotary_dim}) must be at most head_dim ({head_dim})")
        if isinstance(self.rotary_offset, bool) or not isinstance(self.rotary_offset, (int, np.integer)):
            raise TypeError(f"rotary_offset must be an int, got {type(self.rotary_offset).__name__}")
        if not 0 <= self.rotary_offset <= head_dim - rotary_dim:
            raise ValueError(
                f"rotary_offset must be in [0, head_dim - rotary_dim] = [0, {head_dim - rotary_dim}] (the rotary part "
                f"must fit in the head), got {self.rotary_offset}"
            )
        if isinstance(self.direction, bool) or self.direction not in (1, -1):
            raise ValueError(f"direction must be 1 or -1, got {self.direction!r}")
        if isinstance(self.base, bool) or not isinstance(self.base, (int, float, np.integer, np.floating)):
            raise TypeError(f"base must be a real number, got {type(self.base).__name__} {self.base!r}")
        base = float(self.base)
        if not (math.isfinite(base) and base > 0):
            raise ValueError(f"base must be positive and finite, got {self.base}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.scaling is not None:
            from numrope.variants import RopeScaling

            if not isinstance(self.scaling, RopeScaling):
                raise TypeError(
                    "scaling must be a numrope.variants variant (e.g. numrope.variants.Linear(factor=2.0)) "
                    f"or None, got {type(self.scaling).__name__}"
                )
            self.scaling.check(rotary_dim)
        object.__setattr__(self, "head_dim", head_dim)
        object.__setattr__(self, "rotary_dim", rotary_dim)
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "rotary_offset", int(self.rotary_offset))
        object.__setattr__(self, "direction", int(self.direction))
        if self.axes is not None:
            self._check_axes(rotary_dim)
        if not self.depends_on_seq_len:  # the others are checked as each sequence length forms them
            with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below, by name
                inv_freq = self._static_inv_freq
            self._check_frequencies(inv_freq)

    def _check_axes(self, rotary_dim):
        from numrope.axes import AxisMap

        if not isinstance(self.axes, AxisMap):
            raise TypeError(
                f"axes must be a numrope.axes.AxisMap (e.g. numrope.axes.sectioned([16, 24, 24])) or None, "
                f"got {type(self.axes).__name__}"
            )
        n_pairs = rotary_dim // 2
        if len(self.axes) != n_pairs:
            raise ValueError(
                f"axes must have one entry per rotating pair, rotary_dim // 2 = {n_pairs}, got {len(self.axes)}"
            )
        if max(self.axes.freq) >= n_pairs:
            raise ValueError(
                f"axes uses frequency {max(self.axes.freq)}, but rotary_dim {rotary_dim} has {n_pairs} "
                f"(0 .. {n_pairs - 1})"
            )

    @property
    def n_pairs(self) -> int:
        """Number of rotating feature pairs, ``rotary_dim // 2``."""
        return self.rotary_dim // 2

    @property
    def n_axes(self) -> int:
        """The number of coordinates of each position: 1 for plain RoPE, ``axes.n_axes`` for multi-axis RoPE."""
        return 1 if self.axes is None else self.axes.n_axes

    def pair_indices(self, output: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The feature indices ``(j0, j1)`` of each rotating pair, as two int arrays of length ``n_pairs``.

        Pair ``i`` with angle ``m theta_i`` maps ``(x[j0], x[j1])`` to
        ``(y[k0], y[k1]) = (x[j0] cos - x[j1] sin, x[j1] cos + x[j0] sin)``: ``pair_indices()`` are
        the features it reads, ``(j0, j1)``, and ``pair_indices(output=True)`` those it writes,
        ``(k0, k1)``. Both are ``(i, i + n_pairs)`` in the ``"half"`` layout and ``(2i, 2i + 1)`` in the
        ``"interleaved"`` one; ``"interleaved_in_half_out"`` reads ``(2i, 2i + 1)`` and writes
        ``(i, i + n_pairs)``. Everything is shifted by ``rotary_offset``; the features outside the
        rotary part pass through. Every plain-NumPy form in numrope pairs features through this method.

        Parameters
        ----------
        output : bool, default False
            The features the pairs are written to rather than read from.

        Examples
        --------
        >>> import numrope
        >>> numrope.RopeConfig(head_dim=8, rotary_dim=4).pair_indices()
        (array([0, 1]), array([2, 3]))
        >>> numrope.RopeConfig(head_dim=4, layout="interleaved").pair_indices()
        (array([0, 2]), array([1, 3]))
        >>> cfg = numrope.RopeConfig(head_dim=6, rotary_dim=4, rotary_offset=2, layout="interleaved_in_half_out")
        >>> cfg.pair_indices(), cfg.pair_indices(output=True)
        ((array([2, 4]), array([3, 5])), (array([2, 3]), array([4, 5])))
        """
        i = np.arange(self.n_pairs)
        if self.layout == "interleaved" or (self.layout == "interleaved_in_half_out" and not output):
            return self.rotary_offset + 2 * i, self.rotary_offset + 2 * i + 1
        return self.rotary_offset + i, self.rotary_offset + i + self.n_pairs

    @property
    def depends_on_seq_len(self) -> bool:
        """Whether the frequencies depend on the sequence length (dynamic NTK, LongRoPE)."""
        return self.scaling is not None and self.scaling.depends_on_seq_len

    def inv_freq(self, seq_len: int | None = None) -> np.ndarray:
        """The rotation frequencies ``theta_i`` in float64, one per pair.

        Parameters
        ----------
        seq_len : int, optional
            Sequence length, used only by the variants that depend on it (dynamic NTK, LongRoPE).

        Returns
        -------
        numpy.ndarray
            float64 array of shape ``(rotary_dim // 2,)``. For plain RoPE
            ``theta_i = base ** (-2 i / rotary_dim)``; a scaling variant transforms these. With
            ``axes``, pair ``i`` has the frequency ``theta[axes.freq[i]]``; with ``direction=-1``
            every frequency is negated.
            A fresh, writable array on every call.

        Notes
        -----
        RoFormer (Su et al. 2021), eq. 15, with the exponent taken over the rotary part only, as
        every partial-rotary model does.
        """
        if seq_len is not None:
            seq_len = _check_positive_int("seq_len", seq_len)
        return np.array(self.frequencies(seq_len))

    def frequencies(self, seq_len: int | None = None) -> np.ndarray:
        """As :meth:`inv_freq`, but a read-only array that may be shared between calls (no copy)."""
        if self.scaling is None or not self.scaling.depends_on_seq_len:
            return self._static_inv_freq
        inv_freq = self._per_pair(self.scaling.inv_freq(self._unscaled_inv_freq, self, seq_len))
        return self._check_frequencies(inv_freq, seq_len)

    def _check_frequencies(self, inv_freq, seq_len=None):
        """``inv_freq`` if finite and below MAX_ANGLE (position 1 would turn further than cos/sin are exact for)."""
        with np.errstate(invalid="ignore"):
            if np.isfinite(inv_freq).all() and not (np.abs(inv_freq) >= MAX_ANGLE).any():
                return inv_freq
        top = float(np.max(np.abs(inv_freq)))
        given = f"base={self.base:g}" + ("" if self.scaling is None else f", scaling={self.scaling!r}")
        given += "" if seq_len is None else f", seq_len={seq_len}"
        raise ValueError(
            f"the rotation frequencies of this configuration ({given}) reach {top:g} radians per position: "
            "they must be finite and below 2**53, the range of angles numrope's cos and sin are exact for"
        )

    @classmethod
    def from_hf(
        cls, config, *, layer_type: str | None = None, layer: int | None = None, part: str = "text"
    ) -> RopeConfig | None:
        """The RoPE of a Hugging Face model, from its config.json (transformers 4.x or 5.x format).

        Parameters
        ----------
        config : dict, str or os.PathLike
            The parsed config.json, or the path of a config.json or of a model directory.
        layer_type : str, optional
            For models whose layer types rotate differently (Gemma 3's ``"full_attention"`` and
            ``"sliding_attention"``), which one.
        layer : int, optional
            One layer by its index: for models whose layers differ (Llama 4's and SmolLM3's
            ``no_rope_layers``, hybrid models whose Mamba layers have no attention).
        part : str, default "text"
            Which part of the model: ``"text"``, the language model (for a composite config the
            sub-config transformers' ``get_text_config(decoder=True)`` finds); ``"vision"``, the
            vision tower (its ``vision_config``, read by :func:`numrope.models.multiaxis.vision_fields_from_hf`);
            or the key of a sub-config (``"encoder_config"``, dotted for nested ones).
            Multi-axis RoPE (M-RoPE, 2-D vision RoPE) is read into ``axes``; see
            :mod:`numrope.models.multiaxis`.

        Returns
        -------
        RopeConfig or None
            None means that the layer asked for with ``layer`` (or every layer of ``layer_type``)
            has no RoPE: the model gives it no position encoding, or it is no attention layer.
            Without ``layer`` and ``layer_type``, the RoPE of the layers that have one;
            :func:`numrope.models.hf.rope_layers` says which those are.

        Raises
        ------
        ValueError
            An unknown ``rope_type``, a missing required key, factor lists of the wrong length,
            non-positive factors or bases, a missing or unknown ``layer_type``; the message names
            the key and the value.
        NotImplementedError
            What numrope does not implement, named with the reason: a model type whose RoPE it
            does not reproduce (the list is :data:`numrope.models.families.REFUSED`), a multi-axis RoPE
            it does not read (HunYuan-VL's XD-RoPE, MLCD's learned class token angles, model types it
            has not checked), a rope parameter that changes the rotation and that it does not read.

        Notes
        -----
        See :func:`numrope.models.hf.rope_fields_from_hf`, which this calls, for which keys are read.

        Examples
        --------
        >>> import numrope
        >>> cfg = numrope.RopeConfig.from_hf({"hidden_size": 3584, "num_attention_heads": 28,
        ...     "rope_theta": 1e6, "rope_scaling": {"type": "yarn", "factor": 4.0,
        ...     "original_max_position_embeddings": 32768}})  # Qwen2.5 with YaRN
        >>> round(cfg.attention_scaling, 5)
        1.13863
        """
        from numrope.models import hf

        if part == "vision":
            from numrope.models import multiaxis

            return cls(**multiaxis.vision_fields_from_hf(config))
        fields = hf.rope_fields_from_hf(config, layer_type=layer_type, layer=layer, part=part)
        return None if fields is None else cls(**fields)

    @classmethod
    def from_gguf(cls, path, *, layer_type: str | None = None) -> RopeConfig:
        """The RoPE of a llama.cpp model, from its GGUF file's metadata (the ``numrope[gguf]`` extra).

        Parameters
        ----------
        path : str or os.PathLike
            The ``.gguf`` file; its weights are not read.
        layer_type : {None, "full_attention", "sliding_attention"}, optional
            For models whose sliding-window layers have their own base or rotary part.

        Returns
        -------
        RopeConfig

        Raises
        ------
        ModuleNotFoundError
            Without the ``gguf`` package.
        ValueError, TypeError, NotImplementedError
            As :func:`numrope.models.gguf.fields_from_gguf`, which says which keys are read.

        Examples
        --------
        With the ``gguf`` package installed:

        >>> import os, tempfile, gguf, numrope  # doctest: +SKIP
        >>> path = os.path.join(tempfile.mkdtemp(), "llama.gguf")  # doctest: +SKIP
        >>> w = gguf.GGUFWriter(path, "llama")  # doctest: +SKIP
        >>> w.add_embedding_length(4096); w.add_head_count(32); w.add_rope_freq_base(500000.0)  # doctest: +SKIP
        >>> w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()  # doctest: +SKIP
        >>> cfg = numrope.RopeConfig.from_gguf(path)  # doctest: +SKIP
        >>> cfg.head_dim, cfg.base, cfg.layout  # llama.cpp's NORM rope: adjacent pairs  # doctest: +SKIP
        (128, 500000.0, 'interleaved')
        """
        from numrope.models import gguf

        return cls(**gguf.fields_from_gguf(path, layer_type=layer_type))

    def to_hf(self) -> dict:
        """The Hugging Face config keys (transformers 5.x format) that describe this configuration.

        Returns
        -------
        dict
            ``head_dim``, ``rope_parameters`` and, where needed, ``max_position_embeddings`` and
            ``rope_interleave``; :meth:`from_hf` reads it back to an equal configuration. See
            :func:`numrope.models.hf.rope_config_to_hf` (``legacy=True`` for the 4.x format).

        Examples
        --------
        >>> import numrope
        >>> numrope.RopeConfig(head_dim=64, rotary_dim=32).to_hf()["rope_parameters"]
        {'rope_type': 'default', 'rope_theta': 10000.0, 'partial_rotary_factor': 0.5}
        """
        from numrope.models import hf

        return hf.rope_config_to_hf(self)

    @property
    def attention_scaling(self) -> float:
        """Factor folded into cos and sin (1.0 for plain RoPE; YaRN and LongRoPE set it)."""
        if self.scaling is None:
            return 1.0
        return float(self.scaling.attention_factor(self))

    @functools.cached_property
    def _unscaled_inv_freq(self) -> np.ndarray:
        exponents = np.arange(0, self.rotary_dim, 2, dtype=np.float64) / self.rotary_dim
        inv_freq = np.power(self.base, -exponents)
        inv_freq.flags.writeable = False
        return inv_freq

    @functools.cached_property
    def _static_inv_freq(self) -> np.ndarray:
        if self.scaling is None:
            if self.axes is None and self.direction == 1:
                return self._unscaled_inv_freq
            return self._per_pair(self._unscaled_inv_freq)
        return self._per_pair(self.scaling.inv_freq(self._unscaled_inv_freq, self, None))

    def _per_pair(self, inv_freq) -> np.ndarray:
        """The frequency of each pair, read-only: ``inv_freq`` through the axis map's frequency indices."""
        inv_freq = np.asarray(inv_freq, dtype=np.float64)
        if self.axes is not None:
            inv_freq = inv_freq[self.axes.freq_index]
        if self.direction == -1:
            inv_freq = -inv_freq
        inv_freq.flags.writeable = False
        return inv_freq

"""What every adapter shares: the interface, the refusal, and the plumbing that moves arrays in and out.

An adapter runs one framework's own RoPE code on NumPy inputs. It computes nothing of RoPE
itself: frequencies, angles and rotations all come from the framework. What an adapter may do is
plumbing, declared in its metadata so that every report can say so:

* ``"slice"`` (partial rotary): the framework always rotates the whole feature axis, so it is given
  the rotary part ``x[..., :rotary_dim]`` and the rest is put back unchanged;
* ``"perm"`` (pair layout): the framework pairs features another way, so the rotary features are
  permuted so that the model's pairs land on the framework's pairs, and permuted back afterwards.
  RoPE rotates each pair on its own, so this is exact.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from typing import ClassVar

import numpy as np

DTYPES = ("float32", "bfloat16", "float16")


class Unsupported(Exception):
    """The framework cannot express this model's RoPE, or this precision: the row is not measured."""


#: The metadata :meth:`Adapter.describe` reports, in its order (``layouts`` by the features a model's pairs read).
DESCRIBED = (
    "name",
    "label",
    "distribution",
    "level",
    "call",
    "variants",
    "layouts",
    "partial",
    "dtypes",
    "max_position",
)


class Adapter:
    """One framework's RoPE, run from NumPy.

    A subclass states the metadata where it differs from the defaults below. A model-level adapter
    implements :meth:`setup` and :meth:`rotate`; a parameter-level one implements :meth:`build` and
    :meth:`rotation`, and the base class refuses what it cannot express (:meth:`check`) and moves the
    heads into the framework's layout and back (:class:`Plumbing`).

    Attributes
    ----------
    name : str
        The key used by ``--framework`` and in reports.
    label : str
        The framework's name for people; by default its distribution's.
    distribution : str
        The pip distribution whose version is reported; by default the name with ``-`` for ``_``.
    runtime : tuple of str
        Other distributions whose versions matter (the array library underneath).
    modules : tuple of str
        Modules that must be importable for the adapter to run.
    level : {"model", "parameters"}
        ``"model"``: the framework reads the model's config.json itself (its model code builds the
        RoPE). ``"parameters"``: the framework's RoPE layer or function is given numrope's reading of
        the config (head size, base, rotary part, layout, scaling variant).
    call : str
        The framework call that does the work, for reports.
    variants : tuple of str
        The scaling variants (``rope_type``) it expresses; ``"default"`` is plain RoPE.
    layouts : dict
        ``{"half": how, "interleaved": how}`` with ``how`` ``"native"`` or ``"perm"``.
    partial : str
        ``"native"`` or ``"slice"``.
    dtypes : tuple of str
        The precisions it computes in.
    max_position : int or None
        The largest position it can hold (a table of every position up to it), if limited.
    """

    name = ""
    runtime: tuple = ()
    modules: tuple = ()
    level = "parameters"
    call = ""
    variants: tuple = ("default",)
    layouts: ClassVar[dict] = {"half": "native", "interleaved": "native"}
    partial = "native"
    dtypes: tuple = DTYPES
    max_position: int | None = None

    @property
    def distribution(self) -> str:
        return self.name.replace("_", "-")

    @property
    def label(self) -> str:
        return self.distribution

    def missing(self) -> str | None:
        """Why the framework cannot be imported (one line), or None when it can."""
        for module in self.modules:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                return f"{self.distribution} is not installed (no module {module!r})"
        return None

    def version(self, distribution: str | None = None) -> str:
        """The installed version of the framework's distribution (or of ``distribution``)."""
        try:
            return importlib.metadata.version(distribution or self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    def versions(self) -> dict:
        """``{distribution: version}`` for the framework and the runtime under it."""
        return {d: self.version(d) for d in (self.distribution, *self.runtime)}

    def describe(self) -> dict:
        """The adapter's metadata (:data:`DESCRIBED`) as a JSON-able dict."""
        out = {}
        for key in DESCRIBED:
            value = getattr(self, key)
            out[key] = list(value) if isinstance(value, tuple) else dict(value) if isinstance(value, dict) else value
        return out

    def variant(self, cfg) -> str:
        """The name of ``cfg``'s scaling variant, as :attr:`variants` names them: its ``rope_type``."""
        return "default" if cfg.scaling is None else cfg.scaling.rope_type

    def check(self, cfg) -> list:
        """Refuse (Unsupported) what a parameter-level adapter cannot express; return its plumbing notes."""
        if getattr(cfg, "axes", None) is not None:
            raise Unsupported(f"{self.label} has no multi-axis RoPE (M-RoPE, 2-D)")
        if getattr(cfg, "direction", 1) != 1:
            raise Unsupported(f"{self.label} rotates one way only; this model rotates the other way")
        variant = self.variant(cfg)
        if variant not in self.variants:
            raise Unsupported(f"{self.label} has no {variant!r} scaling")
        notes = []
        pairs = input_pairs(cfg)
        if self.layouts[pairs] == "perm":
            notes.append(f"layout {pairs}: perm")
        if cfg.layout == "interleaved_in_half_out":
            notes.append("output reordered to rotate-half order (interleaved in, half out): perm")
        offset = getattr(cfg, "rotary_offset", 0)
        if offset:
            notes.append(f"rotary part at features {offset}..{offset + cfg.rotary_dim - 1}: slice")
        elif cfg.rotary_dim != cfg.head_dim and self.partial == "slice":
            notes.append("partial rotary: slice")
        return notes

    def native(self, cfg) -> str:
        """The pair layout the framework is run in for ``cfg``: the model's own where it takes that natively."""
        pairs = input_pairs(cfg)
        if self.layouts[pairs] == "native":
            return pairs
        return "half" if pairs == "interleaved" else "interleaved"

    def setup(self, model, cfg):
        """Build the framework's RoPE for one model; returns the state :meth:`rotate` needs.

        Raises Unsupported when the framework cannot express the model's RoPE. At the parameter
        level: what :meth:`check` refuses, then the framework's RoPE (:meth:`build`), with the
        plumbing between the model's layout and :meth:`native` (``state["plumbing"]``) and the
        notes on it (``state["notes"]``).
        """
        notes = self.check(cfg)
        state = self.build(model, cfg, notes)
        return {**state, "plumbing": Plumbing(cfg, self.native(cfg), self.partial), "notes": notes}

    def build(self, model, cfg, notes: list) -> dict:
        """The framework's RoPE for ``cfg`` (a parameter-level adapter), as the state :meth:`rotation` reads.

        Imports the framework (Unsupported where that fails); may add plumbing notes to ``notes``.
        """
        raise NotImplementedError

    def rotate(self, state, q, k, positions, dtype, offset=None):
        """Rotate ``q`` and ``k`` (float32, ``(batch, seq, heads, head_dim)``) at ``positions`` (``(seq,)``).

        The inputs hold values exact in ``dtype``; the framework computes in ``dtype``. ``offset``
        is set for a decoding step (``positions == offset + arange(seq)``), where a framework with
        a decoding path takes it. Returns the rotated arrays as float32 NumPy arrays. At the
        parameter level: :meth:`rotation` on q and k together, in the framework's layout.
        """
        plumbing, fn = state["plumbing"], self.rotation(state, positions, dtype, offset)
        return together(lambda x: plumbing.out(fn(plumbing.into(x)), x), q, k)

    def rotation(self, state, positions, dtype, offset):
        """The framework's rotation at ``positions``, in ``dtype``, of an array in its layout.

        Returns a function of one float32 ``(batch, seq, heads, d)`` NumPy array (laid out by
        :class:`Plumbing`) that returns the rotated array as NumPy, in the framework's layout.
        """
        raise NotImplementedError


def pair_permutation(layout: str, native: str, rotary_dim: int) -> np.ndarray | None:
    """Indices ``p`` such that ``x[..., p]`` puts the pairs of ``layout`` where ``native`` pairs features.

    ``None`` when the layouts agree.

    Examples
    --------
    >>> from numrope.conformance.adapters._base import pair_permutation
    >>> pair_permutation("half", "interleaved", 6).tolist()  # pairs (0,3), (1,4), (2,5) -> (0,1), (2,3), (4,5)
    [0, 3, 1, 4, 2, 5]
    >>> pair_permutation("interleaved", "half", 6).tolist()  # pairs (0,1), (2,3), (4,5) -> (0,3), (1,4), (2,5)
    [0, 2, 4, 1, 3, 5]
    """
    if layout == native:
        return None
    n = rotary_dim // 2
    if layout == "half" and native == "interleaved":
        return np.stack([np.arange(n), np.arange(n) + n], axis=-1).reshape(-1)
    if layout == "interleaved" and native == "half":
        return np.concatenate([np.arange(0, rotary_dim, 2), np.arange(1, rotary_dim, 2)])
    raise ValueError(f"unknown layouts {layout!r}, {native!r}")


def input_pairs(cfg) -> str:
    """Which features a model's pairs read: ``"interleaved"`` (adjacent) or ``"half"``."""
    return "half" if cfg.layout == "half" else "interleaved"


class Plumbing:
    """Moves a head between the model's layout and a framework's (slice and perm), and back.

    The framework is given the rotary part (the whole head where it rotates a prefix itself:
    ``partial="native"`` and no rotary offset), with the model's pairs permuted onto its own; its
    output is permuted back, written in rotate-half order for ``"interleaved_in_half_out"`` models,
    and put together with the features that pass through.
    """

    def __init__(self, cfg, native: str, partial: str):
        self.cfg = cfg
        self.offset = getattr(cfg, "rotary_offset", 0)
        self.partial = "slice" if self.offset else partial
        self.perm = pair_permutation(input_pairs(cfg), native, cfg.rotary_dim)
        self.inverse = None if self.perm is None else np.argsort(self.perm)
        self.half_out = (
            pair_permutation("interleaved", "half", cfg.rotary_dim) if cfg.layout == "interleaved_in_half_out" else None
        )

    def into(self, x: np.ndarray) -> np.ndarray:
        """What the framework is given."""
        o, rd = self.offset, self.cfg.rotary_dim
        rot = x[..., o : o + rd]
        if self.perm is not None:
            rot = rot[..., self.perm]
        if self.partial == "slice" or rd == x.shape[-1]:
            return np.ascontiguousarray(rot)
        return np.ascontiguousarray(np.concatenate([rot, x[..., rd:]], axis=-1))

    def out(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The framework's output ``y`` back in the model's layout, with the pass-through features of ``x``."""
        o, rd = self.offset, self.cfg.rotary_dim
        y = np.asarray(y, dtype=np.float32)
        rot = y[..., :rd] if self.inverse is None else y[..., :rd][..., self.inverse]
        if self.half_out is not None:
            rot = rot[..., self.half_out]
        after = x[..., o + rd :] if self.partial == "slice" else y[..., rd:]
        parts = [np.asarray(x[..., :o], dtype=np.float32), rot, np.asarray(after, dtype=np.float32)]
        return np.ascontiguousarray(np.concatenate([p for p in parts if p.shape[-1]], axis=-1))


def together(fn, q, k):
    """``fn`` applied once to q and k stacked along the heads axis (the same positions): one call, not two."""
    y = fn(np.concatenate([q, k], axis=2))
    return y[:, :, : q.shape[2]], y[:, :, q.shape[2] :]


def shared_offset(positions: np.ndarray) -> int | None:
    """``o`` when ``positions == o + arange(len(positions))``, else None."""
    positions = np.asarray(positions)
    if positions.size == 0:
        return None
    o = int(positions[0])
    return o if np.array_equal(positions, o + np.arange(positions.size)) else None


def import_module(name: str):
    """Import a framework module, turning an import failure into Unsupported (one line)."""
    try:
        return importlib.import_module(name)
    except Exception as exc:  # a broken install can raise anything at import time
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise Unsupported(f"cannot import {name}: {type(exc).__name__}: {first}") from None

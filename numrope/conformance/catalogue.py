"""The catalogue of real models (``catalogue.json``, shipped with the package) and numrope's reading of each.

Each entry is an excerpt of a model's ``config.json`` with the keys its RoPE depends on, the
Hugging Face repository it comes from and where the values come from. A model whose layer types
rotate differently (Gemma 3's sliding and global layers) gives one :class:`Model` per layer type.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from importlib import resources

#: The positions named in reports: the error of the run whose context is this long.
NAMED_CONTEXTS = {"4k": 4096, "32k": 32768, "128k": 131072}


@dataclasses.dataclass(frozen=True)
class Model:
    """One model of the catalogue, for one layer type.

    Attributes
    ----------
    name : str
        ``entry`` or ``entry/layer_type``.
    entry : str
        The catalogue's name for the model.
    family, hf_repo, source : str
        The model family, its Hugging Face repository id, and where the values come from.
    config : dict
        The config.json excerpt (a multimodal model keeps its ``text_config``).
    context : int
        The longest sequence measured: the config's ``max_position_embeddings`` unless the entry
        documents another (``context``).
    layer_type : str or None
        For a model whose layer types rotate differently, which one.
    layer_index : int or None
        The index of one layer of that type (for frameworks that build a layer).
    unverified : tuple of str
        Keys not checked against the Hub file.
    """

    name: str
    entry: str
    family: str
    hf_repo: str
    source: str
    config: dict
    context: int
    layer_type: str | None = None
    layer_index: int | None = None
    unverified: tuple = ()

    def text_config(self) -> dict:
        """The language model's keys (``text_config`` of a multimodal config), a copy."""
        text = self.config.get("text_config")
        return copy.deepcopy(text if isinstance(text, dict) else self.config)

    def read(self):
        """numrope's reading: ``RopeConfig.from_hf(config, layer_type=...)``. Raises what from_hf raises."""
        from numrope.config import RopeConfig

        return RopeConfig.from_hf(copy.deepcopy(self.config), layer_type=self.layer_type)

    def describe(self) -> dict:
        return {
            "model": self.name,
            "hf_repo": self.hf_repo,
            "family": self.family,
            "source": self.source,
            "context": self.context,
            "layer_type": self.layer_type,
            "unverified": list(self.unverified),
        }


def _context(entry: dict) -> int:
    if entry.get("context") is not None:
        return int(entry["context"])
    config = entry["config"]
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    for key in ("max_position_embeddings", "n_positions", "seq_length"):
        if text.get(key) is not None:
            return int(text[key])
    raise ValueError(f"catalogue entry {entry['name']!r} has no context and no max_position_embeddings")


def raw_catalogue() -> dict:
    """The parsed ``catalogue.json``."""
    with resources.files("numrope.conformance").joinpath("catalogue.json").open(encoding="utf-8") as f:
        return json.load(f)


def load() -> list[Model]:
    """Every model of the catalogue, one per layer type where the layer types rotate differently.

    Returns
    -------
    list of Model

    Examples
    --------
    >>> from numrope.conformance import catalogue
    >>> models = catalogue.load()
    >>> len({m.entry for m in models}) >= 20
    True
    >>> [m.name for m in models if m.entry == "gemma-3-4b-it"]
    ['gemma-3-4b-it/sliding_attention', 'gemma-3-4b-it/full_attention']
    """
    out = []
    for entry in raw_catalogue()["models"]:
        common = {
            "entry": entry["name"],
            "family": entry["family"],
            "hf_repo": entry["hf_repo"],
            "source": entry["source"],
            "config": entry["config"],
            "context": _context(entry),
            "unverified": tuple(entry.get("unverified", ())),
        }
        layer_types = entry.get("layer_types")
        if layer_types:
            for layer_type, index in layer_types.items():
                out.append(
                    Model(name=f"{entry['name']}/{layer_type}", layer_type=layer_type, layer_index=index, **common)
                )
        else:
            out.append(Model(name=entry["name"], **common))
    return out


def select(models, patterns) -> list[Model]:
    """The models whose name or Hugging Face repository contains one of ``patterns`` (case-insensitive)."""
    if not patterns:
        return list(models)
    patterns = [p.lower() for p in patterns]
    return [m for m in models if any(p in m.name.lower() or p in m.hf_repo.lower() for p in patterns)]

"""A Hugging Face config as a mapping: a ``config.json``, a model directory, a dict or a transformers config.

Private to :mod:`numrope.models`: the plain reader (:mod:`numrope.models.hf`, which re-exports
:func:`load_config`) and the multi-axis reader (:mod:`numrope.models.multiaxis`) both read their
input through :func:`as_mapping`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping


def load_config(path) -> dict:
    """Read a ``config.json`` (or the ``config.json`` in a model directory) into a dict.

    Parameters
    ----------
    path : str or os.PathLike
        The file, or a directory holding ``config.json``.

    Returns
    -------
    dict
        The parsed JSON object.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file is not JSON or does not hold an object.

    Examples
    --------
    >>> import json, os, tempfile
    >>> from numrope.models import hf
    >>> d = tempfile.mkdtemp()
    >>> with open(os.path.join(d, "config.json"), "w") as f:
    ...     json.dump({"head_dim": 64, "rope_theta": 10000.0}, f)
    >>> hf.load_config(d)["head_dim"]
    64
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "config.json")
    with open(path, encoding="utf-8") as f:
        try:
            config = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(config).__name__}")
    return config


def as_mapping(config) -> Mapping:
    """``config`` as a mapping: a mapping as it is, a path read by :func:`load_config`, a
    transformers ``PretrainedConfig`` by its ``to_dict``; TypeError for anything else."""
    if isinstance(config, Mapping):
        return config
    if isinstance(config, (str, os.PathLike)):
        return load_config(config)
    to_dict = getattr(config, "to_dict", None)  # a transformers PretrainedConfig
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"config must be a dict, a path to a config.json or a model directory, got {type(config).__name__}")

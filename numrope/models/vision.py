"""Coordinates for multi-axis RoPE: the ``(t, h, w)`` positions of a vision-language model's tokens,
and the 2-D patch coordinates of vision encoders, built as the models build them.

Text side (M-RoPE, :func:`rope_index`, :func:`mrope_positions`): a text token at position ``p``
gets ``(p, p, p)``; an image or video of ``t' x h' x w'`` tokens (the patch grid after spatial
merging) starting at ``p`` gets ``(p + T_k, p + r, p + c)`` for frame ``k``, row ``r``, column
``c``, in that order; the text after it continues from ``p + max(h', w')``. ``T_k`` is ``k``, or
for Qwen2.5-VL videos ``trunc(k * tokens_per_second * second_per_grid_ts)`` (in float32, as
transformers computes it). Qwen3-VL and GLM-4V give every video frame its own grid (timestamps
between frames are text), so each frame starts its own ``t``; Ernie 4.5 VL merges
``temporal_merge_size`` frames. This is transformers 5.24 ``get_rope_index`` (driven by
``mm_token_type_ids``) of ``Qwen2VLModel``, ``Qwen2_5_VLModel``, ``Qwen3VLModel``, ``Glm4vModel``
and ``Ernie4_5_VLMoeModel``. Note that transformers 5.24 restarts text after a video at
``p + max(h', w')`` even where the video's ``t`` went further (Qwen2.5-VL's time spacing): the
original Qwen code continues from the largest position plus one. numrope follows transformers.

Vision side: :func:`vision_positions` (the Qwen-family towers' spatial-merge order),
:func:`raster_positions` (Pixtral, MLCD's patches), :func:`llama4_vision_positions`.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "FAMILIES",
    "decode_positions",
    "llama4_vision_positions",
    "mrope_positions",
    "raster_positions",
    "rope_index",
    "vision_positions",
]

#: The families of :func:`rope_index`.
FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "glm4v", "ernie4_5_vl")


def _int(name, value, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int of at least {minimum}, got {value!r}")
    return int(value)


def _grids(name, grids):
    if grids is None:
        return []
    arr = np.asarray(grids)
    if arr.dtype.kind not in "iu" or arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must be an (n, 3) integer array of (t, h, w) patch grids, got {arr.dtype}{arr.shape}")
    if arr.size and arr.min() < 1:
        raise ValueError(f"{name} must hold positive grid sizes, got {arr.tolist()}")
    return [tuple(int(v) for v in row) for row in arr]


def _runs(types):
    """[(value, start, end)] of the maximal runs of equal values."""
    if types.size == 0:
        return []
    cut = np.flatnonzero(np.diff(types)) + 1
    starts = np.concatenate([[0], cut])
    ends = np.concatenate([cut, [types.size]])
    return [(int(types[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def _time_steps(n, interval):
    """``(arange(n) * interval).long()`` as torch computes it: float32 product, truncated (exact for ints)."""
    if isinstance(interval, (int, np.integer)):
        return np.arange(n, dtype=np.int64) * int(interval)
    return (np.arange(n, dtype=np.float32) * np.float32(interval)).astype(np.int64)


def rope_index(
    mm_token_type_ids,
    image_grid_thw=None,
    video_grid_thw=None,
    attention_mask=None,
    *,
    family="qwen2_vl",
    spatial_merge_size=2,
    tokens_per_second=None,
    second_per_grid_ts=None,
    temporal_merge_size=None,
):
    """The ``(t, h, w)`` positions of a batch mixing text, images and videos, and the decoding offsets.

    Parameters
    ----------
    mm_token_type_ids : array_like of int, shape (batch, seq)
        0 for a text token, 1 for an image placeholder token, 2 for a video placeholder token (the
        processor's ``mm_token_type_ids``; vision start/end and timestamp tokens are text). Each
        maximal run of 1s (2s) is one image (video).
    image_grid_thw, video_grid_thw : array_like of int, shape (n, 3), optional
        The patch grid ``(t, h, w)`` of each image and video before spatial merging, as the
        processor returns them; consumed in order across the whole batch.
    attention_mask : array_like, shape (batch, seq), optional
        Masked tokens (padding) are skipped and get position 0.
    family : {"qwen2_vl", "qwen2_5_vl", "qwen3_vl", "glm4v", "ernie4_5_vl"}, default "qwen2_vl"
        Whose ``get_rope_index``: Qwen2-VL (and Qwen2.5-Omni's vision grids), Qwen2.5-VL (video time
        spacing), Qwen3-VL and GLM-4V (one grid per video frame), Ernie 4.5 VL (temporal merging).
    spatial_merge_size : int, default 2
        ``vision_config.spatial_merge_size``: ``h' = h // m``, ``w' = w // m``.
    tokens_per_second : float, optional
        Qwen2.5-VL: ``vision_config.tokens_per_second`` (2 in the released checkpoints); needed
        with videos.
    second_per_grid_ts : array_like of float, optional
        Qwen2.5-VL: seconds per temporal grid step of each video (the processor's
        ``second_per_grid_ts``, ``temporal_patch_size / fps``); default 1 each.
    temporal_merge_size : int, optional
        Ernie 4.5 VL: ``vision_config.temporal_merge_size`` (2); needed with videos.

    Returns
    -------
    positions : numpy.ndarray
        int64 ``(3, batch, seq)``, rows ``(t, h, w)``: the ``positions`` of
        :func:`numrope.apply_rope` for a configuration read by ``RopeConfig.from_hf``.
    deltas : numpy.ndarray
        int64 ``(batch, 1)``: the largest position plus one minus the number of tokens. A token
        decoded at cache length ``n`` has position ``n + delta`` on every axis
        (:func:`decode_positions`).

    Raises
    ------
    ValueError
        Shapes that disagree, more image or video runs than grids (or fewer), an unknown family,
        a parameter the family needs and lacks, a run whose length is not its grid's token count.

    Notes
    -----
    transformers 5.24 ``get_rope_index`` (``Qwen2VLModel``, ``Qwen2_5_VLModel``, ``Qwen3VLModel``,
    ``Glm4vModel``, ``Ernie4_5_VLMoeModel``); M-RoPE: Wang et al. 2024, "Qwen2-VL", section 2.1.

    Examples
    --------
    >>> import numpy as np
    >>> from numrope.models.vision import rope_index
    >>> types = np.array([[0, 0, 1, 1, 1, 1, 0]])  # two text tokens, a 4x4-patch image (2x2 tokens), text
    >>> pos, deltas = rope_index(types, image_grid_thw=[[1, 4, 4]])
    >>> pos[:, 0].tolist()
    [[0, 1, 2, 2, 2, 2, 4], [0, 1, 2, 2, 3, 3, 4], [0, 1, 2, 3, 2, 3, 4]]
    >>> int(deltas[0, 0])
    -2
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    m = _int("spatial_merge_size", spatial_merge_size)
    types_all = np.asarray(mm_token_type_ids)
    if types_all.ndim != 2 or types_all.dtype.kind not in "iub":
        raise ValueError(
            f"mm_token_type_ids must be a (batch, seq) integer array, got {types_all.dtype}{types_all.shape}"
        )
    if not np.isin(types_all, (0, 1, 2)).all():
        raise ValueError("mm_token_type_ids must hold 0 (text), 1 (image) or 2 (video)")
    b_n, s_n = types_all.shape
    mask = np.ones((b_n, s_n), bool) if attention_mask is None else np.asarray(attention_mask).astype(bool)
    if mask.shape != types_all.shape:
        raise ValueError(f"attention_mask must have the shape of mm_token_type_ids {types_all.shape}, got {mask.shape}")
    images, videos = _grids("image_grid_thw", image_grid_thw), _grids("video_grid_thw", video_grid_thw)
    intervals = [1] * len(videos)
    t_merge = 1
    if family == "qwen2_5_vl" and videos:
        if tokens_per_second is None:
            raise ValueError("Qwen2.5-VL spaces video frames by tokens_per_second (vision_config.tokens_per_second)")
        spg = np.ones(len(videos), np.float32) if second_per_grid_ts is None else np.asarray(second_per_grid_ts)
        if spg.shape != (len(videos),):
            raise ValueError(f"second_per_grid_ts must have one value per video ({len(videos)}), got {spg.shape}")
        # torch: tokens_per_second (a Python number) * a float32 tensor, then times arange(t), truncated
        intervals = [np.float32(tokens_per_second) * np.float32(s) for s in spg]
    if family == "ernie4_5_vl" and videos:
        if temporal_merge_size is None:
            raise ValueError("Ernie 4.5 VL merges video frames by temporal_merge_size (vision_config)")
        t_merge = _int("temporal_merge_size", temporal_merge_size)
    if family in ("qwen3_vl", "glm4v"):  # one grid per frame: frames are separated by timestamp text
        videos = [(1, h, w) for t, h, w in videos for _ in range(t)]
        intervals = [1] * len(videos)
    image_iter, video_iter = iter(images), iter(zip(videos, intervals, strict=True))
    positions = np.zeros((3, b_n, s_n), dtype=np.int64)
    deltas = np.zeros((b_n, 1), dtype=np.int64)
    for b in range(b_n):
        types = types_all[b][mask[b]].astype(np.int64)
        cur, blocks = 0, []
        for kind, start, end in _runs(types):
            if kind == 0:
                blocks.append(np.broadcast_to(np.arange(cur, cur + end - start), (3, end - start)))
                cur += end - start
                continue
            if kind == 1:
                grid, interval, merge = _next(image_iter, "image", len(images)), 1, 1
            else:
                grid, interval = _next(video_iter, "video", len(videos))
                merge = t_merge
            t, h, w = grid
            lt, lh, lw = t // merge, h // m, w // m
            if lt * lh * lw != end - start:
                raise ValueError(
                    f"{'an image' if kind == 1 else 'a video'} run of {end - start} tokens in sequence {b} does not "
                    f"match its grid {grid}: {lt} x {lh} x {lw} = {lt * lh * lw} tokens after merging"
                )
            tt, hh, ww = np.meshgrid(_time_steps(lt, interval), np.arange(lh), np.arange(lw), indexing="ij")
            blocks.append(np.stack([tt.reshape(-1), hh.reshape(-1), ww.reshape(-1)]) + cur)
            cur += max(h, w) // m  # transformers 5.24: the temporal extent does not advance the text
        pos = np.concatenate(blocks, axis=1) if blocks else np.zeros((3, 0), np.int64)
        positions[:, b, mask[b]] = pos
        deltas[b, 0] = (int(pos.max()) + 1 if pos.size else 0) - pos.shape[1]
    for it, name, n in ((image_iter, "image", len(images)), (video_iter, "video", len(videos))):
        if next(it, None) is not None:
            raise ValueError(
                f"{name}_grid_thw has more grids than the {name} runs of mm_token_type_ids use ({n} given)"
            )
    return positions, deltas


def _next(iterator, name, n):
    item = next(iterator, None)
    if item is None:
        raise ValueError(f"mm_token_type_ids has more {name} runs than {name}_grid_thw has grids ({n})")
    return item


def mrope_positions(runs, family="qwen2_vl", **options):
    """The ``(t, h, w)`` positions of one sequence given as runs of text, images and videos.

    Parameters
    ----------
    runs : sequence
        ``("text", n)`` for ``n`` text tokens (vision start/end and timestamp tokens included),
        ``("image", (t, h, w))`` and ``("video", (t, h, w))`` or ``("video", (t, h, w),
        seconds_per_grid)`` with the patch grid before spatial merging. Qwen3-VL and GLM-4V put
        timestamp text between video frames: give each frame as its own ``("video", (1, h, w))``
        run, with the text between them.
    family : str, default "qwen2_vl"
        As for :func:`rope_index`.
    **options
        ``spatial_merge_size``, ``tokens_per_second``, ``temporal_merge_size``, as for
        :func:`rope_index`.

    Returns
    -------
    numpy.ndarray
        int64 ``(3, seq)``.

    Examples
    --------
    >>> from numrope.models.vision import mrope_positions
    >>> mrope_positions([("text", 2), ("image", (1, 4, 6)), ("text", 1)])[:, 2:].tolist()
    [[2, 2, 2, 2, 2, 2, 5], [2, 2, 2, 3, 3, 3, 5], [2, 3, 4, 2, 3, 4, 5]]
    """
    m = _int("spatial_merge_size", options.get("spatial_merge_size", 2))
    merge = (options.get("temporal_merge_size") or 1) if family == "ernie4_5_vl" else 1
    types, images, videos, seconds = [], [], [], []
    for run in runs:
        if not isinstance(run, (tuple, list)) or not run or run[0] not in ("text", "image", "video"):
            raise ValueError(
                f"each run must be ('text', n), ('image', (t, h, w)) or ('video', (t, h, w)[, s]), got {run!r}"
            )
        if run[0] == "text":
            types += [0] * _int("a text run's length", run[1], 0)
            continue
        grid = tuple(int(v) for v in run[1])
        if len(grid) != 3:
            raise ValueError(f"a vision run's grid must be (t, h, w), got {run[1]!r}")
        t = grid[0] if run[0] == "image" else grid[0] // merge
        types += [1 if run[0] == "image" else 2] * (t * (grid[1] // m) * (grid[2] // m))
        (images if run[0] == "image" else videos).append(grid)
        if run[0] == "video":
            seconds.append(float(run[2]) if len(run) > 2 else 1.0)
    kw = {k: v for k, v in options.items() if k in ("spatial_merge_size", "tokens_per_second", "temporal_merge_size")}
    pos, _ = rope_index(
        np.asarray([types], dtype=np.int64),
        images or None,
        videos or None,
        family=family,
        second_per_grid_ts=seconds if family == "qwen2_5_vl" and videos else None,
        **kw,
    )
    return pos[:, 0]


def decode_positions(deltas, cache_len, n_new=1, n_axes=3):
    """The positions of tokens decoded after a multimodal prefill: ``cache_len + delta + arange(n_new)`` on every axis.

    Parameters
    ----------
    deltas : array_like of int, shape (batch, 1)
        From :func:`rope_index`.
    cache_len : int
        The number of tokens already in the KV cache.
    n_new : int, default 1
        Tokens decoded in this step.
    n_axes : int, default 3

    Returns
    -------
    numpy.ndarray
        int64 ``(n_axes, batch, n_new)``.

    Examples
    --------
    >>> from numrope.models.vision import decode_positions
    >>> decode_positions([[-2]], 7)[:, 0].tolist()
    [[5], [5], [5]]
    """
    d = np.asarray(deltas, dtype=np.int64).reshape(-1, 1)
    p = _int("cache_len", cache_len, 0) + d + np.arange(_int("n_new", n_new), dtype=np.int64)
    return np.broadcast_to(p, (_int("n_axes", n_axes),) + p.shape).copy()


def vision_positions(grid_thw, spatial_merge_size=2):
    """The ``(h, w)`` coordinates of the patches of the Qwen-family vision towers, in their order.

    Parameters
    ----------
    grid_thw : array_like of int, shape (n, 3)
        Each image's or video's patch grid ``(t, h, w)``.
    spatial_merge_size : int, default 2
        Patches come in ``m x m`` blocks (merged into one token afterwards), block by block.

    Returns
    -------
    numpy.ndarray
        int64 ``(2, n_patches)``: rows (row, column), every frame of every grid in turn, the patches
        of each frame in spatial-merge block order ``(block row, block column, row, column)``.

    Notes
    -----
    transformers 5.24 ``vision_utils.get_vision_position_ids`` (its ``(n, 2)`` transposed), used by
    the vision models of Qwen2-VL, Qwen2.5-VL, Qwen2.5-Omni, Qwen3-VL, GLM-4V and Ernie 4.5 VL
    with :func:`numrope.axes.axial` (``RopeConfig.from_hf(config, part="vision")``).

    Examples
    --------
    >>> from numrope.models.vision import vision_positions
    >>> vision_positions([[1, 2, 4]]).tolist()
    [[0, 0, 1, 1, 0, 0, 1, 1], [0, 1, 0, 1, 2, 3, 2, 3]]
    """
    m = _int("spatial_merge_size", spatial_merge_size)
    out = []
    for t, h, w in _grids("grid_thw", grid_thw):
        if h % m or w % m:
            raise ValueError(f"grid {(t, h, w)}: h and w must be multiples of spatial_merge_size {m}")
        hh, ww = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        order = [a.reshape(h // m, m, w // m, m).transpose(0, 2, 1, 3).reshape(-1) for a in (hh, ww)]
        out.append(np.tile(np.stack(order), (1, t)))
    return np.concatenate(out, axis=1) if out else np.zeros((2, 0), np.int64)


def raster_positions(h, w):
    """The ``(row, column)`` coordinates of an ``h x w`` patch grid in raster order: ``(2, h * w)`` int64.

    Pixtral concatenates its images' raster grids (``PixtralVisionModel``); MLCD's patch tokens
    follow its class token in raster order.

    Examples
    --------
    >>> from numrope.models.vision import raster_positions
    >>> raster_positions(2, 3).tolist()
    [[0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2]]
    """
    hh, ww = np.meshgrid(np.arange(_int("h", h)), np.arange(_int("w", w)), indexing="ij")
    return np.stack([hh.reshape(-1), ww.reshape(-1)]).astype(np.int64)


def llama4_vision_positions(image_size, patch_size):
    """Llama 4 vision's ``(x, y)`` coordinates: ``(column + 1, row + 1)`` in raster order, then the class token.

    Returns
    -------
    numpy.ndarray
        int64 ``(2, n * n + 1)`` with ``n = image_size // patch_size``.

    Notes
    -----
    transformers 5.24 ``Llama4VisionRotaryEmbedding`` (``models/llama4``): patch ``k`` is at
    ``(k % n + 1, k // n + 1)``; the class token, appended last, is at ``(0, 0)``: it turns by the angle 0.

    Examples
    --------
    >>> from numrope.models.vision import llama4_vision_positions
    >>> llama4_vision_positions(28, 14).tolist()
    [[1, 2, 1, 2, 0], [1, 1, 2, 2, 0]]
    """
    n = _int("image_size", image_size) // _int("patch_size", patch_size)
    k = np.arange(n * n)
    return np.concatenate([np.stack([k % n + 1, k // n + 1]), np.zeros((2, 1), np.int64)], axis=1).astype(np.int64)

"""numrope.validation with multi-axis RoPE: coordinates accepted everywhere positions are, the bound
at each token's largest coordinate, and the multi-axis mistakes named by the diagnosis."""

import json
import subprocess
import sys

import numpy as np
import pytest

import numrope
from numrope import axes
from numrope.models import vision
from numrope.testing import assert_rope_allclose, error_bound
from numrope.validation import compare, compare_qk

QWEN2 = numrope.RopeConfig(32, 1e6, axes=axes.sectioned([4, 6, 6]))
QWEN3 = numrope.RopeConfig(32, 1e6, axes=axes.interleaved([6, 5, 5]))
TOWER = numrope.RopeConfig(32, 1e4, axes=axes.axial(16))

# text, an image of 3 x 4 tokens, text, a 2-frame video of 2 x 2 tokens, text
COORDS = vision.mrope_positions([("text", 5), ("image", (1, 6, 8)), ("text", 3), ("video", (2, 4, 4)), ("text", 4)])


def mistaken(cfg, coords, x, **changes):
    """x rotated by a configuration with one mistake (changes), as float32 output."""
    import dataclasses

    wrong = dataclasses.replace(cfg, **changes)
    return numrope.apply_rope(x, wrong, coords).astype(np.float32)


def kinds(report):
    return [(f.kind, f.details.get("mistake")) for f in report.diagnosis]


@pytest.fixture
def x(rng):
    return rng.standard_normal((1, COORDS.shape[1], 2, 32))


def test_right_outputs_pass_in_every_precision(x):
    for dtype in (np.float16, np.float32, np.float64):
        got = numrope.apply_rope(x.astype(dtype), QWEN2, COORDS)
        assert compare(got, x.astype(dtype), QWEN2, COORDS).ok
        assert_rope_allclose(got, x.astype(dtype), QWEN2, COORDS)


@pytest.mark.parametrize(
    ("cfg", "changes", "expected"),
    [
        (QWEN2, {"axes": axes.sectioned([6, 6, 4])}, ("axes", "order")),
        (QWEN2, {"axes": axes.interleaved([4, 6, 6])}, ("axes", "interleaving")),
        (QWEN3, {"axes": axes.sectioned([6, 5, 5])}, ("axes", "interleaving")),
        (QWEN2, {"layout": "interleaved"}, ("axes", "layout")),
        (TOWER, {"axes": axes.pixtral(16)}, ("axes", "frequencies")),
        (TOWER, {"axes": axes.AxisMap([1] * 8 + [0] * 8, axes.axial(16).freq, ("h", "w"))}, ("axes", "swapped")),
    ],
    ids=[
        "section-order",
        "interleaved-for-sectioned",
        "sectioned-for-interleaved",
        "layout",
        "pixtral-for-axial",
        "h-w-swapped",
    ],
)
def test_each_multiaxis_mistake_is_named(cfg, changes, expected, rng):
    coords = COORDS if cfg.n_axes == 3 else vision.vision_positions([[1, 8, 12]], 2)
    x = rng.standard_normal((1, coords.shape[1], 2, 32))
    report = compare(mistaken(cfg, coords, x, **changes), x, cfg, coords)
    assert not report.ok
    assert expected in kinds(report), report


def test_sections_dropped_is_plain_rope_of_t(x):
    """The bug a plain reading of mrope_section makes: text tokens agree, image tokens do not."""
    plain = numrope.apply_rope(x, numrope.RopeConfig(32, 1e6), COORDS[0]).astype(np.float32)
    report = compare(plain, x, QWEN2, COORDS)
    assert kinds(report) == [("axes", "dropped")]
    assert "plain RoPE of the t coordinate" in str(report)
    text = np.flatnonzero((COORDS == COORDS[0]).all(axis=0))
    assert compare(plain[:, text], x[:, text], QWEN2, COORDS[:, text]).ok


def test_direction_and_unexplained(x):
    backwards = numrope.apply_rope(x, QWEN2, COORDS, inverse=True).astype(np.float32)
    assert ("direction", "inverse") in kinds(compare(backwards, x, QWEN2, COORDS))
    noise = (numrope.apply_rope(x, QWEN2, COORDS) + 0.1).astype(np.float32)
    assert [f.kind for f in compare(noise, x, QWEN2, COORDS).diagnosis] == ["unexplained"]


def test_bound_is_plain_ropes_at_the_largest_coordinate(x):
    bound = error_bound(x, QWEN2, COORDS, float32_angles=True)
    largest = np.abs(COORDS).max(axis=0)
    plain = error_bound(x, numrope.RopeConfig(32, 1e6), largest, float32_angles=True)
    np.testing.assert_allclose(bound, plain, rtol=1e-12)  # the pair norms differ by their float64 rounding
    strict = error_bound(x, QWEN2, COORDS)
    assert (bound >= strict).all() and (bound > strict).any()


def test_qk_swapped_and_axis_orders(rng):
    q, k = rng.standard_normal((2, 1, 4, COORDS.shape[1], 32))  # (B, H, S, D)
    q_rot, k_rot = numrope.apply_rope_qk(q, k, QWEN2, COORDS, seq_axis=-2)
    assert compare_qk(q_rot, k_rot, q, k, QWEN2, COORDS, seq_axis=-2).ok
    assert [f.kind for f in compare_qk(k_rot, q_rot, q, k, QWEN2, COORDS, seq_axis=-2).diagnosis] == ["swapped"]


def test_bad_coordinates_are_named(x):
    with pytest.raises(ValueError, match="3 coordinate axes"):
        compare(x, x, QWEN2, COORDS[:2])
    with pytest.raises(ValueError, match="axes first"):
        compare(x, x, QWEN2, COORDS[:, :-1])


def test_validate_command_line(tmp_path, x):
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"head_dim": 32, "rope_theta": 1e6, "rope_scaling": {"type": "mrope", "mrope_section": [4, 6, 6]}})
    )
    np.save(tmp_path / "x.npy", x.astype(np.float32))
    np.save(tmp_path / "pos.npy", COORDS)
    plain = numrope.apply_rope(x, numrope.RopeConfig(32, 1e6), COORDS[0]).astype(np.float32)
    np.save(tmp_path / "bad.npy", plain)
    np.save(tmp_path / "good.npy", numrope.apply_rope(x.astype(np.float32), QWEN2, COORDS))

    def run(actual):
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "numrope",
                "validate",
                "--config",
                str(config),
                "--x",
                str(tmp_path / "x.npy"),
                "--actual",
                str(tmp_path / actual),
                "--positions",
                str(tmp_path / "pos.npy"),
                "--json",
            ],
            capture_output=True,
            text=True,
            check=False,
        )

    good, bad = run("good.npy"), run("bad.npy")
    assert good.returncode == 0, good.stderr
    assert bad.returncode == 1, bad.stderr
    assert json.loads(bad.stdout)["diagnosis"][0]["mistake"] == "dropped"


def test_emulate_refuses_multiaxis_configurations(x):
    from numrope.validation import emulate

    with pytest.raises(NotImplementedError, match="multi-axis"):
        emulate.apply_rope(x, QWEN2, None)

"""numrope.checks.multiaxis: the relative property per axis and the rotation matrices of coordinate
vectors hold for every family, and the checks reject encodings that are not relative per axis."""

import json
import subprocess
import sys

import numpy as np
import pytest

import numrope
from numrope import axes
from numrope.checks import multiaxis

CONFIGS = {
    "qwen2": numrope.RopeConfig(64, 1e6, axes=axes.sectioned([8, 12, 12])),
    "qwen3": numrope.RopeConfig(64, 5e6, axes=axes.interleaved([12, 10, 10])),
    "glm4v": numrope.RopeConfig(64, 1e4, rotary_dim=32, layout="interleaved", axes=axes.sectioned([4, 6, 6])),
    "ernie": numrope.RopeConfig(64, 5e5, layout="interleaved", axes=axes.ernie([12, 12, 8])),
    "axial": numrope.RopeConfig(40, 1e4, axes=axes.axial(20)),
    "pixtral": numrope.RopeConfig(32, 1e4, axes=axes.pixtral(16)),
    "yarn": numrope.RopeConfig(64, 1e6, scaling=numrope.variants.YaRN(4.0, 4096), axes=axes.sectioned([8, 12, 12])),
}


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_relative_per_axis_holds(name, dtype):
    report = multiaxis.check_relative(CONFIGS[name], dtype=dtype, max_position=4096)
    assert report.passed, str(report)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_rotation_matrices_hold(name):
    report = multiaxis.check_rotation(CONFIGS[name], (0, 1, 7, 100, 4095, (3, 500, 17)[: CONFIGS[name].n_axes]))
    assert report.passed, str(report)


@pytest.mark.parametrize("layout", ["half", "interleaved"])
def test_checks_hold_with_the_rotary_part_inside_the_head(layout):
    # the features around the rotary part pass through; with YaRN's attention factor only the rotary ones scale
    yarn = numrope.variants.YaRN(4.0, 2048)
    cfg = numrope.RopeConfig(24, rotary_dim=8, rotary_offset=8, layout=layout, scaling=yarn, axes=axes.axial(4))
    for report in (multiaxis.check_relative(cfg, max_position=4096), multiaxis.check_rotation(cfg, (0, 5, 300))):
        assert report.passed, str(report)
    assert not multiaxis.check_relative(cfg, encoding=multiaxis.sinusoidal_absolute).passed


def plain_of_t(cfg):
    """The sections dropped: every pair rotated by the first coordinate (relative in that one axis only)."""

    def encoding(x, coords):
        return numrope.apply_rope(x, cfg, np.broadcast_to(coords[:1], coords.shape))

    return encoding


def swapped_axes(cfg):
    def encoding(x, coords):
        return numrope.apply_rope(x, cfg, coords[::-1])

    return encoding


@pytest.mark.parametrize(
    "make",
    [lambda cfg: multiaxis.sinusoidal_absolute, plain_of_t, swapped_axes],
    ids=["sinusoidal-absolute", "sections-dropped", "axes-swapped"],
)
@pytest.mark.parametrize("name", ["qwen2", "qwen3", "axial"])
def test_encodings_that_are_not_this_rotation_are_rejected(name, make):
    cfg = CONFIGS[name]
    report = multiaxis.check_relative(cfg, encoding=make(cfg), max_position=4096)
    assert not report.passed
    assert not report.comparisons[0].passed  # the closed form per axis rejects each


def test_rotation_matrix_two_ways_and_text_tokens_are_plain_rope():
    from numrope.checks.matrices import exact_rotation_matrix as plain_matrix

    cfg = CONFIGS["qwen3"]
    r = multiaxis.exact_rotation_matrix(cfg, (5.0, 2.0, 9.0))
    np.testing.assert_allclose(r, multiaxis.exact_rotation_matrix(cfg, (5.0, 2.0, 9.0), method="expm"), atol=1e-13)
    np.testing.assert_allclose(multiaxis.exact_rotation_matrix(cfg, (7, 7, 7)), plain_matrix(cfg, 7), atol=1e-15)
    with pytest.raises(ValueError, match="one value per axis"):
        multiaxis.exact_rotation_matrix(cfg, (1, 2))
    with pytest.raises(ValueError, match="one axis"):
        multiaxis.check_relative(numrope.RopeConfig(16))


def test_verify_runs_the_per_axis_checks_for_a_multiaxis_config(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "model_type": "qwen3_vl_text",
                "head_dim": 64,
                "rope_parameters": {"rope_theta": 5e6, "mrope_section": [12, 10, 10], "mrope_interleaved": True},
            }
        )
    )
    run = subprocess.run(
        [sys.executable, "-m", "numrope", "verify", "--config", str(config), "--no-precision"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "closed form g(q, k, p-p')" in run.stdout and "R(p)^T R(p') = R(p'-p)" in run.stdout


def test_demo_refuses_a_multiaxis_config_in_one_line(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "qwen2_vl_vision", "embed_dim": 1280, "num_heads": 16}))
    run = subprocess.run(
        [sys.executable, "-m", "numrope", "demo", "--config", str(config)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 2 and run.stdout == ""
    assert len(run.stderr.splitlines()) == 1 and "multi-axis RoPE (axes h, w)" in run.stderr

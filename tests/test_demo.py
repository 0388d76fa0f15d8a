"""The main job: `numrope demo` and `python -m numrope demo`."""

import subprocess
import sys

import numpy as np
import pytest

from numrope import reference
from numrope.cli import _common, demo, main

FAST = ["demo", "--max-position", "64"]


def test_demo_runs_and_passes(capsys):
    assert main(["demo", "--max-position", "4096"]) == 0
    out = capsys.readouterr().out
    assert "all 4 checks passed" in out
    assert "float32 apply vs complex-number reference" in out
    assert "cache: 4096 positions" in out
    assert "faster" in out or "slower" in out


@pytest.mark.parametrize(
    ("name", "form"),
    [
        ("float64 apply vs rotate-half reference", "rotate_half_form"),
        ("float64 apply vs block-diagonal matrix reference", "matrix_form"),
        ("float32 apply vs complex-number reference", "complex_form"),
    ],
)
def test_every_comparison_counts_in_the_verdict(capsys, monkeypatch, name, form):
    """A reference that disagrees by a hair more than any bound: the demo must say so and exit 1."""
    real = getattr(reference, form)
    monkeypatch.setattr(reference, form, lambda *a, **k: real(*a, **k) * (1 + 1e-5))
    assert main(FAST) == 1
    out = capsys.readouterr().out
    failing = [line for line in out.splitlines() if line.endswith("FAILS")]
    assert len(failing) == 1 and failing[0].startswith(name)
    assert "all 4 checks passed" not in out
    assert out.splitlines()[-1] == f"1 of 4 checks FAILED: {name}"


def test_a_non_relative_rotation_fails_the_spread_check(capsys, monkeypatch):
    real = demo.numrope.apply_rope

    def skewed(x, cfg, positions=None, **kw):  # m -> m**1.01 changes with m for a fixed m - n (tables need ints)
        if positions is None or "cache" in kw:
            return real(x, cfg, positions, **kw)
        return real(x, cfg, np.asarray(positions, dtype=np.float64) ** 1.01, **kw)

    monkeypatch.setattr(demo.numrope, "apply_rope", skewed)
    assert main(FAST) == 1
    out = capsys.readouterr().out
    assert any(line.startswith("<f(q,m), f(k,m-37)> spread") and line.endswith("FAILS") for line in out.splitlines())


def test_slower_is_said_so(capsys, monkeypatch):
    """When the baseline is the faster one, the demo says "slower", never "0.2x faster"."""
    monkeypatch.setattr(demo, "vectorised_numpy", lambda x, cfg: None)  # a baseline that costs nothing
    assert main(FAST) == 0
    out = capsys.readouterr().out
    speed = [line for line in out.splitlines() if line.startswith("  numrope")]
    assert len(speed) == 2 and all("x slower" in line for line in speed), speed
    assert "faster" not in out


@pytest.mark.parametrize(
    ("ratio", "text"), [(3.21, "3.2x faster"), (1.0, "1.0x faster"), (0.5, "2.0x slower"), (0.8, "1.2x slower")]
)
def test_fmt_ratio(ratio, text):
    assert _common.fmt_ratio(ratio) == text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--head-dim", "7"], "argument --head-dim: must be even"),
        (["--head-dim", "0"], "argument --head-dim: must be a positive integer, got 0"),
        (["--head-dim", "-2"], "argument --head-dim: must be a positive integer, got -2"),
        (["--head-dim", "2048"], "argument --head-dim: must be at most 1024"),
        (["--base", "nan"], "argument --base: must be a positive finite number, got nan"),
        (["--base", "0"], "argument --base: must be a positive finite number, got 0"),
        (["--base", "0.5"], "argument --base: must be above 1"),
        (["--max-position", "0"], "argument --max-position: must be a positive integer, got 0"),
        (["--max-position", "1"], "argument --max-position: must be at least 2"),
        (["--max-position", str(2**63 - 1)], "argument --max-position: must be at most 1048576"),
        (["--seed", "-1"], "argument --seed: must be a non-negative integer, got -1"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(["demo", *argv])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1, captured.err
    assert message in captured.err and "Traceback" not in captured.err


def test_the_old_positions_option_is_gone(capsys):
    """--positions set the table's length; --max-position says what it does."""
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--positions", "64"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --positions 64" in capsys.readouterr().err


def test_help_shows_no_markup(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = capsys.readouterr().out
    assert "``" not in text and "numrope demo: rotate a Llama-sized batch" in text
    assert "--max-position N" in text and "exit status: 0" in text


def test_python_dash_m_and_help():
    result = subprocess.run([sys.executable, "-m", "numrope", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "demo" in result.stdout
    assert main(["--version"]) == 0

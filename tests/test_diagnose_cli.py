"""``numrope validate`` with --offsets, --cache/--cache-kind and --plot."""

import json
import sys

import numpy as np
import pytest

import numrope
from numrope import reference
from numrope.cli import main

CFG = numrope.RopeConfig(head_dim=64, base=500000.0)
OFFSETS = np.array([0, 30, 900])
ARGS = ("--head-dim", 64, "--base", 500000)


def run(capsys, *args):
    """(exit status, stdout, stderr); a usage error exits through SystemExit, as argparse's own do."""
    try:
        code = main(["validate", *map(str, args)])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, out, err):
    assert code == 2, (out, err)
    assert out == "" and err.count("\n") == 1 and err.startswith("numrope validate: error: "), err
    return err


@pytest.fixture
def files(tmp_path, rng):
    x = rng.standard_normal((3, 40, 4, 64)).astype(np.float32)
    positions = OFFSETS[:, None] + np.arange(40)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "offsets.npy", OFFSETS)
    np.save(tmp_path / "good.npy", reference.complex_form(x.astype(np.float64), CFG, positions).astype(np.float32))
    ignored = reference.complex_form(x.astype(np.float64), CFG, np.arange(40)).astype(np.float32)
    np.save(tmp_path / "ignored.npy", ignored)  # every row rotated for 0 .. 39
    angle = np.arange(512)[:, None] * numrope.RopeConfig(head_dim=64).inv_freq()  # base 10000 by mistake
    cos, sin = np.cos(angle), np.sin(angle)
    np.save(tmp_path / "vllm.npy", np.concatenate([cos, sin], -1))
    np.savez(tmp_path / "hf.npz", cos=np.concatenate([cos, cos], -1), sin=np.concatenate([sin, sin], -1))
    np.save(tmp_path / "hf_stacked.npy", np.stack([np.concatenate([cos, cos], -1), np.concatenate([sin, sin], -1)]))
    np.save(tmp_path / "freqs_cis.npy", (cos + 1j * sin).astype(np.complex64))
    return tmp_path


def test_offsets(capsys, files):
    x, offsets = ("--x", files / "x.npy", *ARGS), ("--offsets", files / "offsets.npy")
    code, out, _ = run(capsys, *x, "--actual", files / "good.npy", *offsets)
    assert code == 0 and out.startswith("RoPE match")
    code, out, _ = run(capsys, *x, "--actual", files / "ignored.npy", *offsets, "--json")
    assert code == 1
    assert [f["kind"] for f in json.loads(out)["diagnosis"]] == ["batch_rows"]
    err = one_line_error(*run(capsys, *x, "--actual", files / "good.npy", *offsets, "--offset", 3))
    assert "not both" in err


@pytest.mark.parametrize(
    ("kind", "name"), [("vllm", "vllm.npy"), ("hf", "hf.npz"), ("hf", "hf_stacked.npy"), ("freqs_cis", "freqs_cis.npy")]
)
def test_cache_tables(capsys, files, kind, name):
    code, out, _ = run(capsys, "--cache", files / name, "--cache-kind", kind, *ARGS, "--json")
    assert code == 1
    report = json.loads(out)
    assert [f["kind"] for f in report["diagnosis"]] == ["base"] and report["diagnosis"][0]["base"] == 10000.0
    assert report["angles"]["frequencies"]["band"] == "power_law"
    code, out, _ = run(capsys, "--cache", files / name, "--cache-kind", kind, "--head-dim", 64)
    assert code == 0 and out.startswith("RoPE match")


def test_cache_usage_errors(capsys, files):
    vllm = ("--cache", files / "vllm.npy")
    err = one_line_error(*run(capsys, *vllm, *ARGS))
    assert "--cache-kind" in err
    err = one_line_error(*run(capsys, *vllm, "--cache-kind", "vllm", "--x", files / "x.npy", *ARGS))
    assert "not both" in err
    err = one_line_error(*run(capsys, "--x", files / "x.npy", *ARGS))
    assert "--actual" in err
    err = one_line_error(*run(capsys, *vllm, "--cache-kind", "hf", *ARGS))
    assert "hf table" in err
    err = one_line_error(*run(capsys, "--cache", files / "x.npy", "--cache-kind", "vllm", *ARGS))
    assert "--cache" in err and "cos_sin_cache" in err


def test_plot(capsys, files):
    pytest.importorskip("matplotlib")
    table = ("--cache", files / "vllm.npy", "--cache-kind", "vllm", *ARGS)
    plot = files / "angles.png"
    code, _, err = run(capsys, *table, "--plot", plot)
    assert code == 1 and err == f"plot written to {plot}\n"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    match = ("--x", files / "x.npy", "--actual", files / "good.npy", "--offsets", files / "offsets.npy", *ARGS)
    code, _, _ = run(capsys, *match, "--plot", files / "match.svg")
    assert code == 0 and (files / "match.svg").stat().st_size > 0
    assert "no folder" in one_line_error(*run(capsys, *table, "--plot", files / "no" / "p.png"))
    assert "format" in one_line_error(*run(capsys, *table, "--plot", files / "p.xyz"))


def test_plot_without_matplotlib_exits_2_before_reading(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--x", "missing.npy", "--actual", "missing.npy", "--head-dim", "64", "--plot", "p.png"])
    out, err = capsys.readouterr()
    assert exc.value.code == 2 and out == "" and err.count("\n") == 1
    assert "numrope[bench]" in err and "missing.npy" not in err

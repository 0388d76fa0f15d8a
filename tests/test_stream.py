"""Comparing inputs larger than memory: memory-mapped and Dask inputs compared chunk by chunk give the in-memory
report, in memory that does not grow with the files."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import numrope
from numrope import variants
from numrope.validation import compare, compare_qk, stream


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 3 tokens of 4 heads of 16 features: every case below spans many, with uneven ends."""
    monkeypatch.setattr(stream, "CHUNK_ELEMENTS", 3 * 4 * 16 + 5)


def mapped(tmp_path, **arrays):
    """The arrays saved as .npy files and memory-mapped back, read-only: what ``numrope validate`` compares."""
    out = []
    for name, a in arrays.items():
        path = tmp_path / f"{name}.npy"
        np.save(path, a)
        out.append(np.load(path, mmap_mode="r"))
    return out


def same_report(streamed, in_memory):
    assert streamed.to_dict(max_positions=10**6) == in_memory.to_dict(max_positions=10**6)
    assert str(streamed) == str(in_memory)
    np.testing.assert_array_equal(streamed.positions, in_memory.positions)
    np.testing.assert_array_equal(streamed.error_by_position, in_memory.error_by_position)


CFGS = {
    "half": numrope.RopeConfig(head_dim=16),
    "interleaved-partial": numrope.RopeConfig(head_dim=16, rotary_dim=8, layout="interleaved"),
    "yarn": numrope.RopeConfig(head_dim=16, scaling=variants.YaRN(factor=4.0, original_max_position_embeddings=16)),
    "dynamic": numrope.RopeConfig(head_dim=16, scaling=variants.DynamicNTK(factor=2.0, max_position_embeddings=16)),
}


def _wrong(kind, x, cfg, positions, rng):
    """The output under test: right, or wrong in one of the ways the diagnosis names."""
    if kind == "right":
        return numrope.apply_rope(x, cfg, positions).astype(np.float32)
    if kind == "offset":
        shifted = None if positions is None else np.asarray(positions) + 3
        return numrope.apply_rope(x, cfg, 3 if positions is None else shifted).astype(np.float32)
    if kind == "layout":
        other = "interleaved" if cfg.layout == "half" else "half"
        swapped = numrope.RopeConfig(16, base=cfg.base, rotary_dim=cfg.rotary_dim, layout=other, scaling=cfg.scaling)
        return numrope.apply_rope(x, swapped, positions)
    if kind == "halved":  # the pair norms decide the worst element
        return (numrope.apply_rope(x, cfg, positions) * 0.5).astype(np.float32)
    if kind == "nan":
        y = numrope.apply_rope(x, cfg, positions).astype(np.float32)
        y[0, 17, 2, 5] = np.nan
        y[1, 30, 1, 3] += 1.0
        return y
    raise AssertionError(kind)


@pytest.mark.parametrize("name", CFGS)
@pytest.mark.parametrize("kind", ["right", "offset", "layout", "halved", "nan"])
def test_memory_mapped_inputs_give_the_in_memory_report(name, kind, small_chunks, tmp_path, rng):
    cfg = CFGS[name]
    x = rng.standard_normal((2, 37, 4, 16)).astype(np.float32)
    positions = rng.integers(0, 60, (2, 37)) if kind != "offset" else None
    actual = _wrong(kind, x, cfg, positions, rng)
    streamed = compare(*mapped(tmp_path, actual=actual, x=x), cfg, positions)
    in_memory = compare(actual, x, cfg, positions)
    assert in_memory.ok == (kind == "right")
    same_report(streamed, in_memory)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seq_axis": -2},
        {"positions": 1000},
        {"positions": "float"},
        {"float32_angles": True, "positions": "far"},
        {"inverse": True},
        {"rtol": 1e-3, "atol": 1e-6},
        {"diagnose": False},
    ],
    ids=["heads-first", "offset", "float-positions", "float32-angles", "inverse", "rtol-atol", "no-diagnosis"],
)
def test_calling_options(kwargs, small_chunks, tmp_path, rng):
    cfg = CFGS["yarn"]
    kwargs = dict(kwargs)
    shape = (2, 4, 37, 16) if kwargs.get("seq_axis") == -2 else (2, 37, 4, 16)
    x = rng.standard_normal(shape)
    if kwargs.get("positions") == "float":
        kwargs["positions"] = rng.uniform(0, 50, 37)
    elif kwargs.get("positions") == "far":  # angles formed in float32 would err visibly: the note says so
        kwargs["positions"] = 3_000_000 + np.arange(37)
    positions = kwargs.pop("positions", None)
    axis, inverse = kwargs.get("seq_axis", -3), kwargs.get("inverse", False)
    if kwargs.get("float32_angles"):  # positions off by a float32 rounding: within float32 angles' error only
        actual = numrope.apply_rope(x, cfg, positions * (1 + 2.0**-24)).astype(np.float32)
    else:
        actual = numrope.apply_rope(x, cfg, positions, seq_axis=axis, inverse=inverse).astype(np.float32)
        actual[0, 1, 3, 2] += 0.01
    streamed = compare(*mapped(tmp_path, actual=actual, x=x), cfg, positions, **kwargs)
    same_report(streamed, compare(actual, x, cfg, positions, **kwargs))
    if kwargs.get("float32_angles"):
        assert [n.kind for n in streamed.notes] == ["precision"]


def test_bfloat16_output(small_chunks, tmp_path, rng):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    cfg = CFGS["half"]
    x = rng.standard_normal((2, 37, 4, 16)).astype(np.float32)
    actual = numrope.apply_rope(x.astype(ml_dtypes.bfloat16), cfg)
    # a raw np.memmap: .npy files do not keep the bfloat16 dtype (np.load reads them back as |V2)
    raw = np.memmap(tmp_path / "actual.bf16", dtype=actual.dtype, mode="w+", shape=actual.shape)
    raw[...] = actual
    raw.flush()
    on_disk = np.memmap(tmp_path / "actual.bf16", dtype=actual.dtype, mode="r", shape=actual.shape)
    streamed = compare(on_disk, *mapped(tmp_path, x=x), cfg)
    assert streamed.precision == "bfloat16" and streamed.ok
    same_report(streamed, compare(actual, x, cfg))


def test_the_diagnosis_sample_spans_the_whole_array(monkeypatch, tmp_path, rng):
    """More tokens and heads than the diagnosis reads (512 and 8): it reads the same sample as in memory, the worst
    token and head included, wherever they are."""
    monkeypatch.setattr(stream, "CHUNK_ELEMENTS", 7 * 12 * 16)
    cfg = CFGS["half"]
    x = rng.standard_normal((3, 400, 12, 16)).astype(np.float32)
    actual = numrope.apply_rope(x, cfg, 2).astype(np.float32)
    actual[2, 391, 11, 4] += 50.0  # the worst element, in the last chunk and the last head
    streamed = compare(*mapped(tmp_path, actual=actual, x=x), cfg)
    in_memory = compare(actual, x, cfg)
    assert [f.kind for f in in_memory.diagnosis] == [f.kind for f in streamed.diagnosis]
    same_report(streamed, in_memory)
    assert streamed.worst["index"] == (2, 391, 11, 4)


def test_large_arrays_in_memory_are_streamed_too(monkeypatch, rng):
    monkeypatch.setattr(stream, "STREAM_ELEMENTS", 1000)
    monkeypatch.setattr(stream, "CHUNK_ELEMENTS", 500)
    cfg = CFGS["interleaved-partial"]
    x = rng.standard_normal((2, 37, 4, 16))
    actual = numrope.apply_rope(x, cfg, 1)
    assert stream.wants_streaming(actual, x, cfg)
    streamed = compare(actual, x, cfg)
    monkeypatch.setattr(stream, "STREAM_ELEMENTS", 10**9)
    assert not stream.wants_streaming(actual, x, cfg)
    same_report(streamed, compare(actual, x, cfg))


def test_dask_arrays(small_chunks, rng):
    da = pytest.importorskip("dask.array", reason="dask is an optional extra (numrope[dask])")
    cfg = CFGS["half"]
    x = rng.standard_normal((2, 37, 4, 16)).astype(np.float32)
    positions = rng.integers(0, 100, (2, 37))
    actual = numrope.apply_rope(x, cfg, positions + 1)
    lazy_x = da.from_array(x, chunks=(1, 10, 4, 16))
    lazy_actual = numrope.apply_rope(lazy_x, cfg, positions + 1)  # computed slice by slice as the chunks are read
    streamed = compare(lazy_actual, lazy_x, cfg, positions)
    assert [f.kind for f in streamed.diagnosis] == ["offset"]
    same_report(streamed, compare(actual, x, cfg, positions))


def test_compare_qk_with_memory_mapped_files(small_chunks, tmp_path, rng):
    cfg = CFGS["half"]
    q = rng.standard_normal((1, 20, 4, 16)).astype(np.float32)
    k = rng.standard_normal((1, 20, 4, 16)).astype(np.float32)
    q_rot, k_rot = numrope.apply_rope_qk(q, k, cfg)
    files = mapped(tmp_path, q_rot=q_rot, k_rot=k_rot, q=q, k=k)
    swapped = compare_qk(files[1], files[0], files[2], files[3], cfg)
    assert [f.kind for f in swapped.diagnosis] == ["swapped"]
    assert compare_qk(*files, cfg).ok


def test_copy_on_write_maps_keep_their_changes(small_chunks, tmp_path, rng):
    """Pages of read-only maps are handed back after each chunk; a copy-on-write map's are not (the changes made to
    it in memory would be lost and the file's values read instead)."""
    cfg = CFGS["half"]
    x = rng.standard_normal((2, 37, 4, 16)).astype(np.float32)
    np.save(tmp_path / "a.npy", numrope.apply_rope(x, cfg))
    actual = np.load(tmp_path / "a.npy", mmap_mode="c")
    actual[1, 36, 3, 15] += 1.0  # in the last chunk, changed in memory only
    report = compare(actual, x, cfg)
    assert not report.ok and report.worst["index"] == (1, 36, 3, 15)


def test_non_finite_inputs_are_located_in_the_whole_array(small_chunks, tmp_path, rng):
    cfg = CFGS["half"]
    x = rng.standard_normal((2, 37, 4, 16)).astype(np.float32)
    actual = numrope.apply_rope(x, cfg)
    x[1, 30, 2, 7] = np.inf
    with pytest.raises(ValueError, match=r"x holds NaN or infinite values \(the first at index \(1, 30, 2, 7\);"):
        compare(*mapped(tmp_path, actual=actual, x=x), cfg)


def test_multi_axis_configurations_are_compared_in_memory(tmp_path, rng):
    from numrope import axes

    cfg = numrope.RopeConfig(head_dim=16, axes=axes.sectioned([2, 3, 3]))
    x = rng.standard_normal((1, 10, 2, 16))
    coords = rng.integers(0, 20, (3, 10))
    actual = numrope.apply_rope(x, cfg, coords)
    assert not stream.wants_streaming(*mapped(tmp_path, actual=actual, x=x), cfg)
    assert compare(*mapped(tmp_path, actual=actual, x=x), cfg, coords).ok
    with pytest.raises(NotImplementedError, match="multi-axis"):
        stream.compare_chunked(actual, x, cfg, coords)


def test_progress_bar_only_on_request_or_a_terminal(small_chunks, tmp_path, rng, capsys):
    cfg = CFGS["half"]
    x = rng.standard_normal((2, 37, 4, 16)).astype(np.float32)
    files = mapped(tmp_path, actual=numrope.apply_rope(x, cfg), x=x)
    stream.compare_chunked(*files, cfg)  # stderr is not a terminal here
    assert capsys.readouterr().err == ""
    stream.compare_chunked(*files, cfg, progress=True)
    err = capsys.readouterr().err
    assert "74/74 tokens compared" in err and err.endswith("\r")


def test_numrope_validate_streams_npy_files(tmp_path, rng, capsys, monkeypatch):
    from numrope.cli import main

    monkeypatch.setattr(stream, "CHUNK_ELEMENTS", 100)
    cfg = CFGS["half"]
    x = rng.standard_normal((2, 37, 4, 16)).astype(np.float32)
    actual = numrope.apply_rope(x, cfg, 1)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "actual.npy", actual)
    calls = []
    original = stream.compare_chunked
    monkeypatch.setattr(stream, "compare_chunked", lambda *a, **k: calls.append(1) or original(*a, **k))
    args = ["validate", "--x", str(tmp_path / "x.npy"), "--actual", str(tmp_path / "actual.npy"), "--head-dim", "16"]
    assert main([*args, "--json"]) == 1
    assert calls
    assert json.loads(capsys.readouterr().out) == compare(actual, x, cfg).to_dict()


MEMORY_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np, numrope
    from numrope.validation import compare

    folder, n_seq = sys.argv[1], int(sys.argv[2])
    shape, cfg = (1, n_seq, 32, 128), numrope.RopeConfig(128)
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    rng = np.random.default_rng(0)
    with open(f"{folder}/x.npy", "wb") as fx, open(f"{folder}/actual.npy", "wb") as fa:
        np.lib.format.write_array_header_1_0(fx, header)
        np.lib.format.write_array_header_1_0(fa, header)
        for s0 in range(0, n_seq, 512):  # 8 MiB at a time
            x = rng.standard_normal((1, 512, 32, 128), dtype=np.float32)
            fx.write(x.tobytes())
            fa.write(numrope.apply_rope(x, cfg, s0).tobytes())
    del x
    x = np.load(f"{folder}/x.npy", mmap_mode="r")
    actual = np.load(f"{folder}/actual.npy", mmap_mode="r")

    def peak_mib():
        # VmHWM: this process's own peak since its exec. (getrusage's ru_maxrss also keeps the peak of
        # the process it was forked from, here a test worker that may hold a gigabyte.)
        with open("/proc/self/status") as fh:
            line = next(line for line in fh if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024  # kB

    quarter = compare(actual[:, : n_seq // 4], x[:, : n_seq // 4], cfg)
    at_quarter = peak_mib()
    whole = compare(actual, x, cfg)
    print(quarter.ok, whole.ok, at_quarter, peak_mib())
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB and MADV_DONTNEED: Linux")
def test_two_256_mib_files_in_bounded_memory(tmp_path):
    """Two float32 files of 256 MiB each (x and the output), compared in a fresh process: its peak resident memory
    stays under 400 MB, and the whole files take no more than their first quarter (flat as the files grow)."""
    n_seq = 16384  # (1, 16384, 32, 128) float32: 256 MiB
    script = tmp_path / "measure.py"
    script.write_text(MEMORY_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(n_seq)], capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert os.path.getsize(tmp_path / "x.npy") >= 256 * 2**20
    quarter_ok, whole_ok, at_quarter, peak = done.stdout.split()
    assert quarter_ok == "True" and whole_ok == "True"
    assert float(peak) * 2**20 < 400e6, f"peak resident memory {float(peak):.0f} MiB"
    assert float(peak) - float(at_quarter) < 16, f"{at_quarter} MiB after a quarter of the files, {peak} MiB after all"

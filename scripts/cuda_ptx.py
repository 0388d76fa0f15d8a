"""Compile numrope's CUDA kernels to PTX without a GPU, and check what the exact cos/sin compiled to.

Needs numba-cuda, the CUDA toolkit's NVVM (``CUDA_HOME``) and NVRTC (for example the
``nvidia-cuda-nvrtc-cu12`` wheel); no driver or device. Numba compiles device functions for the
current device's compute capability; here there is none, so this script names one.

    CUDA_HOME=/usr/local/cuda python scripts/cuda_ptx.py [--cc 9.0] [--out table.ptx]

It exits 1 if the table kernel's PTX lacks the FMA of the exact product (``fma.rn.f64``) or the
round-to-nearest-even conversion of the quadrant (``cvt.rni``).
"""

import argparse
import sys
import types


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cc", default="9.0", help="compute capability, e.g. 9.0")
    parser.add_argument("--out", help="write the table kernel's PTX here")
    args = parser.parse_args(argv)
    cc = tuple(int(v) for v in args.cc.split("."))

    import numba
    from numba import cuda
    from numba.cuda import dispatcher

    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)
    from numrope.kernels import cuda as kernels

    f64 = numba.float64
    sig = (f64[::1], numba.int64, f64[::1], f64, f64[:, ::1], f64[:, ::1])
    ptx, _ = cuda.compile_ptx(kernels.table.py_func, sig, cc=cc)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(ptx)
    counts = {op: ptx.count(op) for op in ("fma.rn.f64", "cvt.rni", "call.uni")}
    print(
        f"table kernel, sm_{cc[0]}{cc[1]}: {len(ptx)} characters of PTX; "
        + ", ".join(f"{k}: {v}" for k, v in counts.items())
    )
    return 0 if counts["fma.rn.f64"] and counts["cvt.rni"] else 1


if __name__ == "__main__":
    sys.exit(main())

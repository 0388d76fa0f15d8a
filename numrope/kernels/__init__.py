"""The kernels: private, compiled with Numba for the CPU and with numba.cuda for the GPU.

Nothing here checks its arguments; :mod:`numrope.apply`, :mod:`numrope.cache` and
:mod:`numrope.cuda` check them first.

* :mod:`~numrope.kernels.sincos` -- the exact ``cos/sin(m * theta)``, one source for both targets;
* :mod:`~numrope.kernels.half` -- float16 conversions for the CPU (Numba has no float16 there);
* :mod:`~numrope.kernels.cpu` -- the rotation and table kernels and their launchers;
* :mod:`~numrope.kernels.cuda` -- the GPU kernels, imported only where CUDA is used;
* :mod:`~numrope.kernels.jit` -- parallel and serial compilations, and the thread-safety rule.
"""

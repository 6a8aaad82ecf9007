r"""How many threads the LAPACK under JAX may use on a CPU.

On a CPU, `jnp.linalg.eigh` calls the LAPACK that SciPy ships (jaxlib takes its routines
from `scipy.linalg.cython_lapack`: SciPy's OpenBLAS in the wheels). XLA runs the
independent operations of a program concurrently on its own threads, so the `eigh` of
the sector blocks run side by side; with OpenBLAS's threads on top of XLA's, two
concurrent `eigh` each ask for every core and the cores are oversubscribed. Measured on
2 cores (N = 12, the 13 blocks in one jitted program, 2026-11-30): 0.37-0.41 s with
OpenBLAS's default threads, 0.20-0.21 s with one thread each (the same blocks called one
at a time with two threads: 0.21 s); the whole jitted solve 0.60 s against 0.33 s.

So an exact solve traced on a CPU gives SciPy's OpenBLAS half the usable cores per
call, at least one: one on 2 cores (measured above); on more cores the two largest blocks
(sectors $k$ and $N - k$ have equal size), which XLA runs side by side and which set the
time, then share the cores between them (that heuristic is not measured: only 2-core
machines were at hand). The environment variable `BAYESNMR_LAPACK_THREADS` sets another
count (e.g. the number of cores, to keep OpenBLAS's own threading). Other BLAS
libraries (NumPy's own OpenBLAS) are left alone; the streamed solver, which calls SciPy's
`eigh` one block at a time outside XLA, takes every core back while it runs
(`lapack_threads`).
"""

import contextlib
import functools
import os
from collections.abc import Iterator

_ENV = "BAYESNMR_LAPACK_THREADS"
_applied: int | None = None  # the count `serial_lapack` last set


@functools.cache
def _scipy_blas() -> tuple:
    """The thread controllers of the BLAS/LAPACK libraries shipped inside SciPy (empty if
    threadpoolctl sees none: SciPy linked to a system library is left alone); found
    once per process."""
    import scipy.linalg  # noqa: F401 (loads SciPy's LAPACK, so threadpoolctl sees it)
    from threadpoolctl import ThreadpoolController

    return tuple(
        lib
        for lib in ThreadpoolController().lib_controllers
        if lib.user_api == "blas" and "scipy" in os.path.basename(os.path.dirname(lib.filepath))
    )


def _cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _env_threads() -> int:
    value = os.environ.get(_ENV, str(max(1, _cores() // 2)))
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(
            f"Environment variable {_ENV} must be a positive integer (threads for SciPy's "
            f"LAPACK under XLA), but is {value!r}; unset it for the default (half the "
            "cores, at least 1)."
        )
    return n


def serial_lapack() -> None:
    """Set SciPy's OpenBLAS to `BAYESNMR_LAPACK_THREADS` threads (default: half the
    usable cores, at least 1) on the CPU backend (a GPU's `eigh` does not use it): when a
    solve is traced and the count differs from the one it last set, so a later change
    of the variable takes effect and a count set since by the caller is left alone. A
    bad value raises on every solve."""
    global _applied
    import jax

    if jax.default_backend() != "cpu":
        return
    n = _env_threads()
    if n != _applied:
        for lib in _scipy_blas():
            lib.set_num_threads(n)
        _applied = n


@contextlib.contextmanager
def lapack_threads(n: int | None = None) -> Iterator[None]:
    """Within the block, SciPy's OpenBLAS uses `n` threads (default: every core); the
    count it had is restored afterwards."""
    libs = _scipy_blas()
    n = n or _cores()
    before = [lib.get_num_threads() for lib in libs]
    try:
        for lib in libs:
            lib.set_num_threads(n)
        yield
    finally:
        for lib, b in zip(libs, before, strict=True):
            lib.set_num_threads(b)

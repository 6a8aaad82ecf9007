"""The exact solver: block diagonalisation in the sectors of fixed total $F_z$."""

import functools
import math
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._checks import is_concrete
from ._grid import TimeGrid
from ._sectors import fid_norm, iz1_amplitudes, iz1_norm, raising_amplitudes, sectors
from ._sectors import sector_hamiltonian as _sector_hamiltonian
from ._solver import AbstractSolver
from ._spectral import make_spectral_observable
from ._streamed import streamed_sums
from ._system import System
from ._traces import Traces


def sector_hamiltonian(system: System, k: int) -> jnp.ndarray:
    r"""The block of $H$ (rad/s) in the sector with $k$ spins down, dense `(d_k, d_k)`."""
    return _sector_hamiltonian(system.offsets_hz, system.pair_j_hz, k, pairs=system.pairs)


def estimate_cost(n_spins: int, n_times: int) -> tuple[float, float]:
    r"""A rough (seconds, bytes) estimate of one exact solve of a long chain on 2 CPU cores.

    Calibrated on the sector-by-sector runs of `benchmarks/scaling.py` (2026-11-26):
    the time is $1.05 \times 10^{-10}\,\mathrm{s} \times \sum_k d_k^3$ (the `eigh`
    of every block and the amplitude products; N = 14, 15, 16 measured 13.7, 94 and
    655 s, this gives 12, 88 and 665 s), and the memory five `(d, d)` float64 arrays of
    the largest block plus 0.35 GiB of Python and JAX (measured 2.2 and 6.5 GiB at
    N = 15, 16; this gives 1.9 and 6.5). The time grid adds little.
    """
    dims = [math.comb(n_spins, k) for k in range(n_spins + 1)]
    seconds = 1.05e-10 * sum(float(d) ** 3 for d in dims)
    return seconds, 8.0 * 5 * max(dims) ** 2 + 0.35 * 2**30


class ExactSolver(AbstractSolver):
    r"""Exact evolution by diagonalising $H$ in each sector of fixed total $F_z$.

    $H$ conserves $F_z$, so it is block diagonal, with blocks of dimension
    $\binom{N}{k}$. Each block is diagonalised once with `eigh`, and the observables are
    spectral sums: the FID over the transitions between neighbouring sectors, weighted
    by $|\langle i|F_+|a\rangle|^2$, and `iz1` over pairs of states within each sector.
    Nothing of size $2^N \times 2^N$ is ever built; memory grows with the largest block,
    $\binom{N}{\lfloor N/2\rfloor}$.

    Gradients are exact everywhere, including at degenerate points ($J = 0$, equal
    offsets), where differentiating `eigh` naively gives NaN (see `_spectral.py`).

    **Arguments:**

    - `max_spins`: the largest chain this solver accepts (default 16). Above it a
      solve is refused with an estimate of its cost; `TypicalitySolver` reaches
      larger chains.
    - `time_dtype`: `None` (the default: the chain's dtype, float64 under x64) or
      `"float32"` for the phase tables and the sums over times; the eigendecompositions
      stay in the chain's dtype. It raises the batch throughput a little (N = 8) and
      hardly helps one long chain, with errors of about 1e-7 in the traces (the figures
      are in [Solvers](solvers.md) and [Benchmarks](benchmarks.md)): enough for training
      data, which is stored in float32, not for inference on precise data.
    - `stream_from`: chains of at least this many spins (default 14), given concrete
      values (not under `jit`, `vmap` or `grad`), are solved one sector at a time in
      NumPy/SciPy, holding two blocks' eigenvectors at most (the time and memory per N
      are in [Benchmarks](benchmarks.md)); the jitted path would need all blocks at
      once (about 5 GB of eigenvectors at N = 16).
      Traced chains always take the jitted path.
    """

    max_spins: int = eqx.field(static=True, default=16)
    time_dtype: str | None = eqx.field(static=True, default=None)
    stream_from: int = eqx.field(static=True, default=14)
    check_values: ClassVar[bool] = False

    def __check_init__(self):
        if self.time_dtype not in (None, "float32", "float64"):
            raise ValueError(
                "Argument `time_dtype` must be None, 'float32' or 'float64', but is "
                f"{self.time_dtype!r}."
            )
        for name in ("max_spins", "stream_from"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"Argument `{name}` must be a positive integer, but is {value!r}.")

    def check(self, chain: System, grid: TimeGrid) -> None:
        n = chain.n_spins
        if n > self.max_spins:
            secs, mem = estimate_cost(n, grid.n)
            raise ValueError(
                f"ExactSolver: a chain of {n} spins has a largest block of "
                f"{math.comb(n, n // 2)} states; an exact solve would take roughly "
                f"{secs / 60:.0f} min and {mem / 2**30:.1f} GiB on 2 CPU cores, beyond "
                f"`max_spins={self.max_spins}`. Use `solver=bn.TypicalitySolver()` for a "
                "stochastic estimate with error bars, or raise `max_spins` to run it anyway."
            )

    def observables(self, chain: System, grid: TimeGrid) -> Traces:
        n = chain.n_spins
        blocks = [sector_hamiltonian(chain, k) for k in range(n + 1)]
        (fid_re, fid_im), (iz1, _) = _observables(n, grid, self.time_dtype, chain.iz_index)(blocks)
        return _normalised(n, grid, fid_re, fid_im, iz1)

    def eager(self, chain: System, grid: TimeGrid) -> Traces | None:
        n = chain.n_spins
        if n < self.stream_from or not (is_concrete(chain.offsets_hz) and is_concrete(chain.j_hz)):
            return None
        sums = streamed_sums(
            np.asarray(chain.offsets_hz),
            np.asarray(chain.pair_j_hz),
            grid.times,
            self.time_dtype,
            pairs=chain.pairs,
            iz_index=chain.iz_index,
        )
        dtype = chain.offsets_hz.dtype
        return _normalised(n, grid, *(jnp.asarray(x, dtype=dtype) for x in sums))


def _normalised(n: int, grid: TimeGrid, fid_re, fid_im, iz1) -> Traces:
    return Traces(
        mx=fid_re / fid_norm(n),
        my=fid_im / fid_norm(n),
        iz1=iz1 / iz1_norm(n),
        grid=grid,
    )


@functools.cache
def _observables(n: int, grid: TimeGrid, time_dtype: str | None = None, iz_index: int = 0):
    r"""The FID (transitions from sector k + 1 to sector k through $F_+$) and iz1 (pairs
    of states within each sector, through the diagonal $I_{kz}$ of spin `iz_index`),
    sharing one `eigh` of every block."""
    fid = [(k, k + 1, raising_amplitudes(n, k)) for k in range(n)]
    iz1 = [(k, k, iz1_amplitudes(sectors(n)[k].z[iz_index])) for k in range(n + 1)]
    return make_spectral_observable([fid, iz1], grid.times, time_dtype)

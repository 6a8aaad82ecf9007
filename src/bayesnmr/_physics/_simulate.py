"""The one entry point: `simulate(chain, grid, solver)`."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._checks import is_concrete
from ._exact import ExactSolver
from ._grid import TimeGrid
from ._solver import AbstractSolver
from ._system import SpinChain, SpinSystem, System
from ._traces import Traces


def simulate(chain: System, grid: TimeGrid, solver: AbstractSolver | None = None) -> Traces:
    r"""Simulate the FID and the local polarisation of a spin chain or spin system.

    **Arguments:**

    - `chain`: the `SpinChain`, or a `SpinSystem` (any network of couplings; its `iz1`
      follows the polarisation of its `iz_spin`).
    - `grid`: the `TimeGrid` of output times.
    - `solver`: the forward model: `ExactSolver()` (the default), `DiffraxSolver()`,
      `TypicalitySolver()` or a surrogate from `load_surrogate`.

    **Returns:** `Traces` with `mx`, `my` and `iz1` of shape `(grid.n,)`. A finite
    `chain.t2_s` multiplies `mx` and `my` by $e^{-t/T_2}$, for every solver.

    Works under `jax.jit`, `jax.vmap` (build the chains inside the vmapped function)
    and `jax.grad` with respect to offsets and couplings.
    """
    if solver is None:
        solver = ExactSolver()
    if not isinstance(chain, SpinChain | SpinSystem):
        raise ValueError(
            "Argument `chain` must be a `bn.SpinChain` or a `bn.SpinSystem`, but is a "
            f"{type(chain).__name__}."
        )
    if not isinstance(grid, TimeGrid):
        raise ValueError(
            f"Argument `grid` must be a `bn.TimeGrid`, but is a {type(grid).__name__}."
        )
    _check_solver(solver)
    solver.check(chain, grid)
    warn_if_aliased(chain.offsets_hz, grid)
    solver = solver.prepare(chain, grid)
    tr = solver.eager(chain, grid)
    if tr is None:
        tr = _observables(solver, chain, grid)
    return _with_decay(tr, chain)


def _check_solver(solver) -> None:
    if not isinstance(solver, AbstractSolver):
        raise ValueError(
            f"Argument `solver` must be a solver object such as `bn.ExactSolver()`, "
            f"`bn.DiffraxSolver()`, `bn.TypicalitySolver()` or a surrogate from "
            f"`bn.load_surrogate(...)`, but is {solver!r}."
        )


def _with_decay(tr: Traces, chain: System) -> Traces:
    """Apply the phenomenological $T_2$ decay of `chain` to the FID (and its errors)."""
    if chain.t2_s is not None:
        decay = jnp.exp(-jnp.asarray(tr.grid.times, dtype=tr.mx.dtype) / chain.t2_s)
        tr = Traces(
            mx=tr.mx * decay,
            my=tr.my * decay,
            iz1=tr.iz1,
            grid=tr.grid,
            mx_err=None if tr.mx_err is None else tr.mx_err * decay,
            my_err=None if tr.my_err is None else tr.my_err * decay,
            iz1_err=tr.iz1_err,
        )
    return tr


@eqx.filter_jit
def _observables(solver: AbstractSolver, chain: System, grid: TimeGrid) -> Traces:
    return solver.observables(chain, grid)


def simulate_batch(
    offsets_hz,
    j_hz,
    grid: TimeGrid,
    solver: AbstractSolver | None = None,
    *,
    t2_s=None,
    chunk: int | None = None,
    iz_spin: int = 1,
) -> Traces:
    r"""Simulate many chains (or networks) of the same length at once.

    **Arguments:**

    - `offsets_hz`: the offsets of every chain in Hz, shape `(B, N)`.
    - `j_hz`: the couplings in Hz: a scalar (every chain, every bond), shape `(B,)` (one
      $J$ per chain), `(B, N - 1)` (per bond), or `(B, N, N)`: a coupling matrix per
      system, simulated as `SpinSystem`s (any network of couplings, `iz1` following spin
      `iz_spin`).
    - `grid`, `solver`: as for `simulate` (default `ExactSolver()`).
    - `t2_s`: one $T_2$ in seconds for every chain, or `None`.
    - `chunk`: chains per vectorised step. The batch runs as `jax.lax.map` over chunks,
      each chunk a `jax.vmap`. The default is 16 on a CPU, where one `vmap` over
      hundreds of chains spills the caches (N = 8, T = 300, 256 chains on 2 cores: 535
      trajectories/s in chunks of 16 against 425/s for one `vmap`, in the scaling
      benchmark), and the whole batch on a GPU.

    **Returns:** `Traces` whose arrays have shape `(B, grid.n)`.

    Every chain passes the same checks as in `simulate` (finite values, the solver's
    limits, a surrogate's domain). Works under `jax.grad`.
    """
    if solver is None:
        solver = ExactSolver()
    _check_solver(solver)
    if not isinstance(grid, TimeGrid):
        raise ValueError(
            f"Argument `grid` must be a `bn.TimeGrid`, but is a {type(grid).__name__}."
        )
    offsets = jnp.asarray(offsets_hz)
    if not jnp.issubdtype(offsets.dtype, jnp.floating):
        offsets = offsets.astype(jnp.result_type(float))
    if offsets.ndim != 2 or 0 in offsets.shape:
        raise ValueError(
            "Argument `offsets_hz` must have shape (B, N): the offsets of B >= 1 chains of "
            f"N >= 1 spins, one chain per row, but has shape {tuple(offsets.shape)}. For "
            "one chain use `bn.simulate`."
        )
    b, n = offsets.shape
    j = jnp.asarray(j_hz, dtype=offsets.dtype)
    if j.ndim == 0:
        j = jnp.broadcast_to(j, (b,))
    if j.shape not in ((b,), (b, n - 1), (b, n, n)):
        raise ValueError(
            f"Argument `j_hz` must be a scalar, shape ({b},) (one J per chain), "
            f"({b}, {n - 1}) (one per bond) or ({b}, {n}, {n}) (a coupling matrix per "
            f"system), matching `offsets_hz` of shape ({b}, {n}), but has shape "
            f"{tuple(j.shape)}."
        )
    network = j.ndim == 3
    if chunk is None:
        chunk = 16 if jax.default_backend() == "cpu" else b
    if isinstance(chunk, bool) or not isinstance(chunk, int | np.integer) or chunk < 1:
        raise ValueError(f"Argument `chunk` must be a positive integer, but is {chunk!r}.")
    _check_rows_finite(offsets, j)
    warn_if_aliased(offsets, grid)
    # The checks of `simulate`: on every chain where the solver's check reads the values
    # (a surrogate's domain), else (limits on N and the grid) on the first.
    make = _system_maker(network, iz_spin)
    first = make(offsets[0], j[0], t2_s)
    solver.check(first, grid)
    if network and is_concrete(j):  # every matrix symmetric with a zero diagonal
        a = np.asarray(j)
        bad = np.flatnonzero(
            np.any(np.diagonal(a, axis1=1, axis2=2) != 0, axis=1)
            | ~np.all(np.isclose(a, np.swapaxes(a, 1, 2), rtol=1e-12, atol=0.0), axis=(1, 2))
        )
        if bad.size:
            raise ValueError(
                f"Argument `j_hz`: the coupling matrices of rows {bad[:10].tolist()} are not "
                "symmetric with a zero diagonal; give each coupling in both places and 0 on "
                "the diagonal."
            )
    if solver.check_values:
        for i in range(1, b):
            solver.check(make(offsets[i], j[i], t2_s), grid)
    return _batch(solver, offsets, j, first.t2_s, grid, min(int(chunk), b), network, iz_spin)


def _system_maker(network: bool, iz_spin: int):
    if network:
        return lambda nu, j, t2: SpinSystem(nu, j, t2, iz_spin=iz_spin)
    return SpinChain


def warn_if_aliased(offsets_hz, grid: TimeGrid) -> None:
    """Warn when a (concrete) offset lies beyond the grid's Nyquist frequency."""
    if not is_concrete(offsets_hz):
        return
    top = float(np.max(np.abs(np.asarray(offsets_hz))))
    nyquist = 0.5 / grid.dt
    if top > nyquist:
        warnings.warn(
            f"An offset of {top:g} Hz lies beyond the Nyquist frequency 1/(2 dt) = "
            f"{nyquist:g} Hz of the grid: its lines alias to the wrong frequency in mx and "
            f"my. Use a smaller `dt` (at most {0.5 / top:.3g} s).",
            UserWarning,
            stacklevel=3,
        )


def _check_rows_finite(offsets, j) -> None:
    for name, x in (("offsets_hz", offsets), ("j_hz", j)):
        if is_concrete(x):
            bad = ~np.isfinite(np.asarray(x)).reshape(len(x), -1).all(axis=1)
            if bad.any():
                raise ValueError(
                    f"Argument `{name}` must be finite, but rows "
                    f"{np.flatnonzero(bad).tolist()} have non-finite entries."
                )


@eqx.filter_jit
def _batch(solver, offsets, j, t2_s, grid, chunk, network=False, iz_spin=1):
    make = _system_maker(network, iz_spin)

    def one(args):
        chain = make(*args, t2_s)
        return _with_decay(solver.prepare(chain, grid).observables(chain, grid), chain)

    return jax.lax.map(one, (offsets, j), batch_size=chunk)

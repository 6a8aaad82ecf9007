"""The one entry point: `simulate(system, grid, solver)`."""

import equinox as eqx
import jax.numpy as jnp

from ._exact import ExactSolver
from ._grid import TimeGrid
from ._solver import AbstractSolver
from ._system import SpinChain
from ._traces import Traces


def simulate(system: SpinChain, grid: TimeGrid, solver: AbstractSolver | None = None) -> Traces:
    r"""Simulate the FID and the local polarisation of a spin chain.

    **Arguments:**

    - `system`: the `SpinChain`.
    - `grid`: the `TimeGrid` of output times.
    - `solver`: the forward model: `ExactSolver()` (the default), `DiffraxSolver()`,
      `TypicalitySolver()` or a surrogate from `load_surrogate`.

    **Returns:** `Traces` with `mx`, `my` and `iz1` of shape `(grid.n,)`. A finite
    `system.t2_s` multiplies `mx` and `my` by $e^{-t/T_2}$, for every solver.

    Works under `jax.jit`, `jax.vmap` (build the chains inside the vmapped function)
    and `jax.grad` with respect to offsets and couplings.
    """
    if solver is None:
        solver = ExactSolver()
    if not isinstance(system, SpinChain):
        raise ValueError(
            f"Argument `system` must be a `bn.SpinChain`, but is a {type(system).__name__}."
        )
    if not isinstance(grid, TimeGrid):
        raise ValueError(
            f"Argument `grid` must be a `bn.TimeGrid`, but is a {type(grid).__name__}."
        )
    if not isinstance(solver, AbstractSolver):
        raise ValueError(
            f"Argument `solver` must be a solver object such as `bn.ExactSolver()`, "
            f"`bn.DiffraxSolver()`, `bn.TypicalitySolver()` or a surrogate from "
            f"`bn.load_surrogate(...)`, but is {solver!r}."
        )
    solver.check(system, grid)
    solver = solver.prepare(system, grid)
    tr = _observables(solver, system, grid)
    if system.t2_s is not None:
        decay = jnp.exp(-jnp.asarray(grid.times, dtype=tr.mx.dtype) / system.t2_s)
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
def _observables(solver: AbstractSolver, system: SpinChain, grid: TimeGrid) -> Traces:
    return solver.observables(system, grid)

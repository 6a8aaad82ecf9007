"""A network fit's misfit and its compiled functions (L-BFGS stages, batched misfits, the
Gauss-Newton Hessian), one set per `_Plan`."""

import dataclasses
import functools

import jax
import jax.numpy as jnp

from .._physics._grid import TimeGrid
from .._physics._simulate import simulate
from .._physics._system import SpinSystem
from ._data import Dataset
from ._descent import jtj, lbfgs_batch
from ._network_space import NetworkSpace


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What a network fit's compiled functions depend on beyond array shapes: one set of
    compiled functions serves every fit with the same plan (`_functions`)."""

    free_offsets: tuple[int, ...]
    iz_spin: int
    names: tuple[str, ...] | None
    grid: TimeGrid
    solver: object
    has_iz1: bool
    steps: int


def _plan_and_consts(data: Dataset, space: NetworkSpace, solver, steps: int = 1):
    """The `_Plan` of a fit and its arrays (the boxes, the fixed values, the data)."""
    s = space.spec.system
    plan = _Plan(tuple(space.free_offsets), s.iz_spin, s.names, data.grid, solver,
                 data.iz1 is not None, steps)  # fmt: skip
    obs = (data.mx, data.my) + (() if data.iz1 is None else (data.iz1,))
    consts = {
        "lo": space.lo, "hi": space.hi, "base": space.base_offsets, "fixed_j": space.fixed_j,
        "masks": space.masks, "t2": s.t2_s, "obs": obs,
    }  # fmt: skip
    return plan, jax.tree.map(jnp.asarray, consts)


def _residuals(plan: _Plan, c, x):
    """Model less data at `x` (Hz): one row per observed trace."""
    k = len(plan.free_offsets)
    nu = c["base"].at[jnp.asarray(plan.free_offsets, int)].set(x[:k])
    j = c["fixed_j"] + jnp.tensordot(x[k:], c["masks"], 1)
    system = SpinSystem(nu, j, c["t2"], iz_spin=plan.iz_spin, names=plan.names)
    tr = simulate(system, plan.grid, plan.solver)
    sims = (tr.mx, tr.my) + ((tr.iz1,) if plan.has_iz1 else ())
    return jnp.stack([a - b for a, b in zip(sims, c["obs"], strict=True)])


def _misfit(plan: _Plan, c, x, w):
    """Half the sum of squared residuals at `x` (Hz), weighted by `w(t)` (ones for the
    data, $e^{-t/\\tau}$ for a broadened stage)."""
    return 0.5 * jnp.sum((w[None] * _residuals(plan, c, x)) ** 2)


def _to_hz(c, u):
    return c["lo"] + (c["hi"] - c["lo"]) * jax.nn.sigmoid(u)


def _build(plan: _Plan):
    """The compiled functions of a fit: `stage(u, w, c)` (L-BFGS from every row of `u`,
    unconstrained), `batch(xs, w, c)` (the misfit at every row, Hz) and `hessian(x, c)`
    (of the data's misfit)."""

    def descend(u, w, c):  # the chains' L-BFGS: the best point each start visited
        return lbfgs_batch(lambda v: _misfit(plan, c, _to_hz(c, v), w), plan.steps)(u)[0]

    stage = jax.jit(descend)
    batched = jax.jit(jax.vmap(functools.partial(_misfit, plan), in_axes=(None, 0, None)))

    def batch(xs, w, c):
        return batched(c, xs, w)

    def hessian(x, c):  # Gauss-Newton, as for a chain (`_descent.gauss_newton`)
        return jtj(lambda x: _residuals(plan, c, x), x)

    return stage, batch, jax.jit(hessian)


_cached_build = functools.lru_cache(maxsize=8)(_build)


def _functions(plan: _Plan):
    """`_build(plan)`, from a cache when the plan (its solver) is hashable."""
    try:
        hash(plan)
    except TypeError:
        return _build(plan)
    return _cached_build(plan)


def _misfit_fn(data: Dataset, space: NetworkSpace, solver):
    """`misfit(x, w)` of these data (for checks and benchmarks)."""
    plan, consts = _plan_and_consts(data, space, solver)
    return lambda x, w: _misfit(plan, consts, x, w)

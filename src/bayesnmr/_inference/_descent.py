"""The least-squares misfit over the free parameters, and batched L-BFGS descents on it.

Package-internal: `fit` and the global search (`_search.py`) drive these.
"""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._parallel import thread_pool
from .._physics._grid import TimeGrid
from .._physics._lapack import _cores
from .._physics._simulate import simulate
from .._physics._system import SpinChain
from ._data import Dataset
from ._model import Priors


class Space:
    """Free parameters <-> an unconstrained vector through a logistic map onto the boxes.

    The free parameters, in Hz, in the order of `names`: the offsets (unless fixed), then
    J (one, or one per bond), as in the conventions' parameter vector.
    """

    def __init__(self, priors: Priors):
        self.priors = priors
        lo, hi, names = [], [], []
        if "offsets_hz" not in priors.fixed:
            lo += list(priors.offsets_hz[:, 0])
            hi += list(priors.offsets_hz[:, 1])
            names += [f"offsets_hz[{i}]" for i in range(priors.n_spins)]
        if "j_hz" not in priors.fixed:
            jb = priors.j_hz.reshape(-1, 2)
            lo += list(jb[:, 0])
            hi += list(jb[:, 1])
            names += [f"j_hz[{i}]" for i in range(jb.shape[0])] if priors.per_bond else ["j_hz"]
        self.lo, self.hi, self.names = np.array(lo), np.array(hi), names

    @property
    def free_offsets(self) -> bool:
        return "offsets_hz" not in self.priors.fixed

    @property
    def free_j(self) -> bool:
        return "j_hz" not in self.priors.fixed

    def to_u(self, x):
        p = np.clip((np.asarray(x) - self.lo) / (self.hi - self.lo), 1e-6, 1 - 1e-6)
        return np.log(p) - np.log1p(-p)

    def clip(self, x):
        """`x` moved inside the boxes (just inside: the logistic map cannot reach an edge)."""
        eps = 1e-6 * (self.hi - self.lo)
        return np.clip(x, self.lo + eps, self.hi - eps)

    def plan(self, data: Dataset, steps: int) -> "Plan":
        return Plan(
            self.priors.n_spins,
            self.priors.per_bond,
            self.free_offsets,
            self.free_j,
            data.grid,
            data.iz1 is not None,
            steps,
        )

    def consts(self, data: Dataset) -> dict:
        """Everything a descent needs as arrays: traced, so one compilation serves any data."""
        f = self.priors.fixed
        obs = [data.mx, data.my] + ([] if data.iz1 is None else [data.iz1])
        return {
            "lo": jnp.asarray(self.lo),
            "hi": jnp.asarray(self.hi),
            "offsets": jnp.asarray(f.get("offsets_hz", np.zeros(self.priors.n_spins)), float),
            "j": jnp.asarray(f.get("j_hz", 0.0), float),
            "obs": [jnp.asarray(o) for o in obs],
            "times": jnp.asarray(data.grid.times),
        }


@dataclasses.dataclass(frozen=True)
class Plan:
    """The static structure of a fit (hashable): what is free, the grid, the steps per
    stage."""

    n_spins: int
    per_bond: bool
    free_offsets: bool
    free_j: bool
    grid: TimeGrid
    observe_iz1: bool
    steps: int


def chain_of(plan: Plan, consts: dict, x) -> SpinChain:
    """The chain of the free-parameter vector `x` (Hz), with the fixed values filled in."""
    n, k = plan.n_spins, 0
    if plan.free_offsets:
        nu, k = x[:n], n
    else:
        nu = consts["offsets"]
    if plan.free_j:
        j = x[k:] if plan.per_bond else x[k]
    else:
        j = consts["j"]
    return SpinChain(nu, j)


def to_hz(consts: dict, u):
    return consts["lo"] + (consts["hi"] - consts["lo"]) * jax.nn.sigmoid(u)


def residuals_hz(plan: Plan, consts: dict, solver, x):
    """Model less data at `x` (Hz): one row per observed trace (mx, my, iz1)."""
    tr = simulate(chain_of(plan, consts, x), plan.grid, solver)
    model = [tr.mx, tr.my] + ([tr.iz1] if plan.observe_iz1 else [])
    return jnp.stack([m - o for m, o in zip(model, consts["obs"], strict=True)])


def loss_hz(plan: Plan, consts: dict, solver, tau, x):
    """The least-squares misfit in Hz, residuals weighted by $e^{-t/\\tau}$ if `tau`."""
    w = 1.0 if tau is None else jnp.exp(-consts["times"] / tau)[None]
    return 0.5 * jnp.sum(w * residuals_hz(plan, consts, solver, x) ** 2)


@eqx.filter_jit
def screen(plan: Plan, consts: dict, solver, tau, xs):
    """The misfit (weighted by $e^{-t/\\tau}$) at each row of `xs` (Hz), in chunks of 16."""
    return jax.lax.map(lambda x: loss_hz(plan, consts, solver, tau, x), xs, batch_size=16)


@eqx.filter_jit
def descend_stage(plan: Plan, consts: dict, solver, tau, u0, n_steps=None):
    """L-BFGS steps for a batch of starts on the misfit weighted by $e^{-t/\\tau}$ (`tau`
    an array, `inf` for none): `n_steps` of them (an int array, at most `plan.steps`;
    `None`: `plan.steps`). One compilation serves every stage of every descent of a fit
    structure: the global search's short and full ones, and `fit`'s from a start.

    Returns the best point of each start, its misfit (so weighted), and each start's
    misfit and point at each of the `plan.steps` steps (those past `n_steps`: the misfit
    `inf`, the point unchanged).
    """

    def loss_u(u):
        return loss_hz(plan, consts, solver, tau, to_hz(consts, u))

    n = plan.steps if n_steps is None else n_steps
    u, value, (hist, path) = lbfgs_batch(loss_u, plan.steps, n)(u0)
    return u, value, hist, path


@eqx.filter_jit
def gauss_newton(plan: Plan, consts: dict, solver, x):
    """The Gauss-Newton Hessian $A^T A$ of the (unweighted) misfit in Hz at `x`, $A$ the
    Jacobian of the residuals (forward mode).

    The misfit's full Hessian adds $\\sum_k r_k \\nabla^2 r_k$, which at an optimum is of
    the order of the noise: at the default 4-spin problem the standard errors differ by
    at most 1.3 % and $\\log\\det$ by 0.006. $A^T A$ is never indefinite, and it compiles
    in a quarter of the time (1.2 s against 4.7 s at N = 4: forward mode alone, against
    forward over reverse), once per fit structure.
    """
    return jtj(lambda x: residuals_hz(plan, consts, solver, x), x)


def jtj(residuals, x):
    """$A^T A$ with $A$ the Jacobian of `residuals` (any shape) at `x`, by forward mode."""
    a = jax.jacfwd(lambda x: residuals(x).reshape(-1))(x)
    return a.T @ a


def lbfgs_batch(loss, steps, n_steps=None):
    """`steps` L-BFGS iterations (zoom line search) for a batch of starts, or the first
    `n_steps` of them (a traced count: one compilation for any count up to `steps`).

    Returns the best point each start visited and its misfit (not its last point): once a
    start has converged, the line search can fail on rounding noise, and optax then takes
    the step anyway, which can throw the point far away (seen: a converged 2-spin fit
    thrown to the edge of its prior box, J = 0, where the gradient vanishes and it stays).
    """
    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def one(u):
        def step(carry):
            u, state, best_u, best_v = carry
            value, grad = value_and_grad(u, state=state)
            better = value < best_v
            best_u, best_v = jnp.where(better, u, best_u), jnp.where(better, value, best_v)
            updates, state = opt.update(grad, state, u, value=value, grad=grad, value_fn=loss)
            u = optax.apply_updates(u, updates)
            return (u, state, best_u, best_v), (value, u)

        def idle(carry):  # past `n_steps`
            return carry, (jnp.asarray(jnp.inf, dtype=carry[0].dtype), carry[0])

        def body(carry, i):
            if n_steps is None:
                return step(carry)
            return jax.lax.cond(i < n_steps, step, idle, carry)

        init = (u, opt.init(u), u, jnp.asarray(jnp.inf, dtype=u.dtype))
        (u, _, best_u, best_v), hist = jax.lax.scan(body, init, jnp.arange(steps))
        last = loss(u)
        return jnp.where(last < best_v, u, best_u), jnp.minimum(last, best_v), hist

    return lambda u0: over_rows(one, u0)


def over_rows(fn, x):
    """`fn` on every row of `x`: on a CPU one row after another (`lax.map`), elsewhere
    side by side (`vmap`).

    Under `vmap` the line search's loop runs, in every lane, as many times as the lane
    that needs the most, so on a CPU a batch costs far more than its rows do one at a
    time: 25 L-BFGS steps for 48 starts of the default 4-spin misfit took 1.12 s
    vectorized and 0.67 s one start after another, 10.0 against 2.7 s for 64 starts at
    N = 6, and the sequential program compiles in about half the time (measured on 2
    CPU cores, 2026-12-01). A GPU gains from the width, so it keeps `vmap`.
    """
    if jax.default_backend() == "cpu":
        return jax.lax.map(fn, x)
    return jax.vmap(fn)(x)


def split_rows(fn, *args, rows: int = -1, part: int | None = None):
    """`fn(*args)` for a jitted `fn` whose argument `args[rows]` is a batch: on a CPU with
    that batch split into equal parts that run side by side in threads (one part per
    core, as many as divide the batch; or parts of `part` rows, if that divides it), the
    outputs (a pytree, batch first) joined again.

    JAX lets go of Python while a compiled function runs, and on a CPU each call runs
    on its own: two halves of 48 starts (25 L-BFGS steps, the default 4-spin misfit)
    took 0.38 s in two threads against 0.65 s in one call (2 cores, 2026-12-01). The
    parts have one shape, so one compilation serves them, done before the threads start.
    """
    calls = split_args(args, rows, part) if jax.default_backend() == "cpu" else [args]
    if len(calls) == 1:
        return fn(*args)
    fn.lower(*calls[0]).compile()  # once, not in every thread at the same time
    outs = list(thread_pool().map(lambda a: jax.block_until_ready(fn(*a)), calls))
    return jax.tree.map(lambda *o: jnp.concatenate(o), *outs)


def part_rows(size: int) -> int:
    """The rows of each part `split_rows` makes of a batch of `size` rows by default: a
    batch of another size split into parts of this many shares their compilation."""
    return size // len(split_args((np.zeros(size),)))


def split_args(args: tuple, rows: int = -1, part: int | None = None) -> list[list]:
    """The arguments of each part of `split_rows` (one part per core, as many as divide
    the batch `args[rows]`; or parts of `part` rows if that divides it)."""
    x = args[rows]
    size = x.shape[0]
    if part is not None and 0 < part <= size and size % part == 0:
        parts = size // part
    else:
        parts = max(p for p in range(1, min(_cores(), size) + 1) if size % p == 0)
    calls = []
    for i in range(parts):
        one = list(args)
        one[rows] = x[i * size // parts : (i + 1) * size // parts]
        calls.append(one)
    return calls

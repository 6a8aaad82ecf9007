"""Point estimates by gradient descent (optax L-BFGS), robust to the oscillating misfit."""

import dataclasses
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._physics._grid import TimeGrid
from .._physics._simulate import simulate
from .._physics._solver import AbstractSolver
from .._physics._system import SpinChain
from ._data import Dataset, peak_offsets
from ._model import Priors


@dataclasses.dataclass(frozen=True)
class FitResult:
    """A point estimate.

    **Fields:** `offsets_hz`, `j_hz` (the estimate, in Hz), `loss` (the final
    least-squares misfit $\\frac12\\sum r^2$), `loss_history` (per step, of the chosen
    start), `n_steps`, `seconds` (wall time after compilation), `start` (which start won),
    `sigma` (the noise estimated from the residuals), `path` (the free parameters in Hz
    after each step, in the order of `names`), and `covariance`, `stderr` (the
    Laplace approximation over the free parameters, in the order of `names`).
    """

    offsets_hz: np.ndarray
    j_hz: np.ndarray
    loss: float
    loss_history: np.ndarray
    n_steps: int
    seconds: float
    start: int
    sigma: float
    names: list
    path: np.ndarray
    covariance: np.ndarray | None = None

    @property
    def stderr(self) -> np.ndarray | None:
        return None if self.covariance is None else np.sqrt(np.diag(self.covariance))


class _Space:
    """Free parameters <-> an unconstrained vector through a logistic map onto the boxes."""

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

    def to_u(self, x):
        p = np.clip((np.asarray(x) - self.lo) / (self.hi - self.lo), 1e-6, 1 - 1e-6)
        return np.log(p) - np.log1p(-p)

    def plan(self, data: Dataset, steps: int, taus: tuple) -> "_Plan":
        f = self.priors.fixed
        return _Plan(
            self.priors.n_spins,
            self.priors.per_bond,
            "offsets_hz" not in f,
            "j_hz" not in f,
            data.grid,
            data.iz1 is not None,
            steps,
            taus,
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
class _Plan:
    """The static structure of a fit (hashable): what is free, the grid, the stages."""

    n_spins: int
    per_bond: bool
    free_offsets: bool
    free_j: bool
    grid: TimeGrid
    observe_iz1: bool
    steps: int
    taus: tuple


def _chain(plan: _Plan, consts: dict, x) -> SpinChain:
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


def _to_hz(consts: dict, u):
    return consts["lo"] + (consts["hi"] - consts["lo"]) * jax.nn.sigmoid(u)


def _loss_hz(plan: _Plan, consts: dict, solver, tau, x):
    """The least-squares misfit in Hz, residuals weighted by $e^{-t/\\tau}$ if `tau`."""
    tr = simulate(_chain(plan, consts, x), plan.grid, solver)
    model = [tr.mx, tr.my] + ([tr.iz1] if plan.observe_iz1 else [])
    w = 1.0 if tau is None else jnp.exp(-consts["times"] / tau)
    return 0.5 * sum(jnp.sum(w * (m - o) ** 2) for m, o in zip(model, consts["obs"], strict=True))


@eqx.filter_jit
def _descend(plan: _Plan, consts: dict, solver, u0):
    """Every stage of L-BFGS for a batch of starts, and the final misfit of each."""
    u, histories, paths = u0, [], []
    for tau in plan.taus:

        def loss_u(u, tau=tau):
            return _loss_hz(plan, consts, solver, tau, _to_hz(consts, u))

        u, (hist, path) = _lbfgs_batch(loss_u, plan.steps)(u)
        histories.append(hist)
        paths.append(path)
    final = jax.vmap(lambda u: _loss_hz(plan, consts, solver, None, _to_hz(consts, u)))(u)
    return u, jnp.concatenate(histories, axis=1), jnp.concatenate(paths, axis=1), final


@eqx.filter_jit
def _hessian(plan: _Plan, consts: dict, solver, x):
    return jax.hessian(lambda x: _loss_hz(plan, consts, solver, None, x))(x)


def fit(
    data: Dataset,
    priors: Priors,
    *,
    solver: AbstractSolver | None = None,
    init: dict | None = None,
    n_starts: int = 8,
    steps: int = 25,
    broadening: tuple[float, ...] = (0.03, 0.1),
    seed: int = 0,
    laplace: bool = True,
) -> FitResult:
    """Least-squares point estimate of the free parameters, by optax L-BFGS.

    The misfit of an FID oscillates in the parameters, with a false minimum every
    ~$1/T$ Hz, so one descent from a poor start stops in the nearest one. `fit` therefore:

    1. starts from the spectrum's peaks (or `init`) and from `n_starts - 1` random
       points in the prior boxes, all at once (one `vmap`-ed batch);
    2. descends first on line-broadened data, weighting residuals by $e^{-t/\\tau}$ for
       each $\\tau$ in `broadening` (a smooth misfit), then on the full data;
    3. keeps the start with the lowest final misfit.

    With `n_starts=1` and `broadening=()` it is a plain L-BFGS descent from `init` (the
    paper's experiment). The noise $\\sigma$ is not fitted; it is estimated from the
    residuals, and `laplace=True` adds the Laplace covariance (the inverse Hessian of
    $\\sum r^2 / 2\\sigma^2$ in Hz).

    The descent is compiled once per structure (which parameters are free, the grid,
    the stages, the solver's type) and reused for new data and priors of that shape.

    **Returns:** a `FitResult`.
    """
    if priors.n_spins != data.n_spins:
        raise ValueError(
            f"The priors are for {priors.n_spins} spins but the data for {data.n_spins}."
        )
    if n_starts < 1 or steps < 1:
        raise ValueError(f"`n_starts` and `steps` must be >= 1, got {n_starts}, {steps}.")
    priors.check_domain(solver)
    space = _Space(priors)
    if not space.names:
        raise ValueError("Nothing to fit: every parameter is fixed in `priors.fixed`.")
    first = _first_start(data, priors, space, init)
    rng = np.random.default_rng(seed)
    randoms = rng.uniform(space.lo, space.hi, (n_starts - 1, len(space.names)))
    u0 = jnp.asarray(np.vstack([space.to_u(first)[None], space.to_u(randoms)])[:n_starts])

    plan = space.plan(data, steps, (*broadening, None))
    consts = space.consts(data)
    _descend.lower(plan, consts, solver, u0).compile()  # so that `seconds` is the fit alone
    t0 = time.perf_counter()
    u, history, path, final = jax.block_until_ready(_descend(plan, consts, solver, u0))
    seconds = time.perf_counter() - t0
    best = int(jnp.argmin(final))
    x = np.asarray(_to_hz(consts, u[best]))
    chain = _chain(plan, consts, jnp.asarray(x))
    n_obs = data.grid.n * (2 if data.iz1 is None else 3)
    sigma = float(np.sqrt(2 * float(final[best]) / n_obs))
    cov = None
    if laplace:
        hess = np.asarray(_hessian(plan, consts, solver, jnp.asarray(x))) / sigma**2
        cov = np.linalg.pinv(0.5 * (hess + hess.T))
    return FitResult(
        offsets_hz=np.asarray(chain.offsets_hz),
        j_hz=np.asarray(chain.j_hz),
        loss=float(final[best]),
        loss_history=np.asarray(history[best]),
        path=np.asarray(jax.vmap(lambda v: _to_hz(consts, v))(path[best])),
        n_steps=len(plan.taus) * steps,
        seconds=seconds,
        start=best,
        sigma=sigma,
        names=space.names,
        covariance=cov,
    )


def _lbfgs_batch(loss, steps):
    """`steps` L-BFGS iterations (zoom line search) for a batch of starts.

    Returns the best point each start visited, not its last: once a start has converged,
    the line search can fail on rounding noise, and optax then takes the step anyway, which
    can throw the point far away (seen: a converged 2-spin fit thrown to the edge of its
    prior box, J = 0, where the gradient vanishes and it stays).
    """
    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def one(u):
        def body(carry, _):
            u, state, best_u, best_v = carry
            value, grad = value_and_grad(u, state=state)
            better = value < best_v
            best_u, best_v = jnp.where(better, u, best_u), jnp.where(better, value, best_v)
            updates, state = opt.update(grad, state, u, value=value, grad=grad, value_fn=loss)
            u = optax.apply_updates(u, updates)
            return (u, state, best_u, best_v), (value, u)

        init = (u, opt.init(u), u, jnp.asarray(jnp.inf, dtype=u.dtype))
        (u, _, best_u, best_v), hist = jax.lax.scan(body, init, None, length=steps)
        return jnp.where(loss(u) < best_v, u, best_u), hist

    return jax.vmap(one)


def _first_start(data, priors, space, init):
    if init is not None:
        parts = []
        if "offsets_hz" not in priors.fixed:
            parts.append(np.asarray(init["offsets_hz"], np.float64))
        if "j_hz" not in priors.fixed:
            parts.append(np.atleast_1d(np.asarray(init["j_hz"], np.float64)))
        return np.concatenate(parts)
    parts = []
    if "offsets_hz" not in priors.fixed:
        peaks = peak_offsets(data, priors.n_spins)
        box = priors.offsets_hz
        # Each spin's box takes the nearest peak inside it, else the box centre.
        parts.append(
            np.array(
                [
                    min(peaks, key=lambda p, b=b: abs(p - b.mean()))
                    if np.any((peaks > b[0]) & (peaks < b[1]))
                    else b.mean()
                    for b in box
                ]
            )
        )
    if "j_hz" not in priors.fixed:
        parts.append(priors.j_hz.reshape(-1, 2).mean(1))
    return np.concatenate(parts)

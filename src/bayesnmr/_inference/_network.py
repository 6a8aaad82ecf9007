"""Inference for any network of couplings: least squares and NUTS over any subset of the
shifts and couplings of a `SystemSpec` (fixed, free in a box, or tied to another).

`bn.fit(data, spec)` and `bn.sample_posterior(data, spec)` come here when the priors are
a `SystemSpec` (from `bn.load_spin_system`); the chain's machinery (the global search,
modes, surrogates) stays with `Priors`.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._physics._simulate import simulate
from .._physics._solver import AbstractSolver
from .._physics._system import SpinSystem
from .._physics._system_file import SystemSpec
from ._data import Dataset


class NetworkSpace:
    """The free parameters of a `SystemSpec` as one vector in Hz: the offsets with a box,
    then one coupling per free coupling (a tied coupling shares its root's parameter),
    in the file's order; `system(x)` is the `SpinSystem` at `x`."""

    def __init__(self, spec: SystemSpec):
        if not isinstance(spec, SystemSpec):
            raise ValueError(
                f"Expected a `SystemSpec` (from `bn.load_spin_system`), got {type(spec).__name__}."
            )
        self.spec = spec
        s = spec.system
        n = s.n_spins
        self.free_offsets = [i for i, b in enumerate(spec.offset_boxes) if b is not None]
        roots = [c for c in spec.couplings if c.tied_to is None and c.box is not None]
        self.coupling_pairs = [
            [c.pair] + [d.pair for d in spec.couplings if d.tied_to == c.pair] for c in roots
        ]
        masks = np.zeros((len(roots), n, n))
        for p, pairs in enumerate(self.coupling_pairs):
            for i, k in pairs:
                masks[p, i, k] = masks[p, k, i] = 1.0
        self.masks = masks
        self.fixed_j = np.asarray(s.j_hz) * (1.0 - masks.sum(0))
        self.base_offsets = np.asarray(s.offsets_hz, np.float64)
        boxes = [spec.offset_boxes[i] for i in self.free_offsets] + [c.box for c in roots]
        self.lo = np.array([b[0] for b in boxes], np.float64)
        self.hi = np.array([b[1] for b in boxes], np.float64)
        names = spec.names
        self.offset_names = [names[i] for i in self.free_offsets]
        self.coupling_names = [f"{names[c.pair[0]]}-{names[c.pair[1]]}" for c in roots]
        self.names = [f"offsets_hz[{x}]" for x in self.offset_names] + [
            f"j_hz[{x}]" for x in self.coupling_names
        ]
        self.start = np.r_[self.base_offsets[self.free_offsets], [c.j_hz for c in roots]]

    @property
    def n_offsets(self) -> int:
        return len(self.free_offsets)

    def system(self, x) -> SpinSystem:
        k = self.n_offsets
        nu = jnp.asarray(self.base_offsets).at[jnp.asarray(self.free_offsets, int)].set(x[:k])
        j = jnp.asarray(self.fixed_j) + jnp.tensordot(x[k:], jnp.asarray(self.masks), 1)
        s = self.spec.system
        return SpinSystem(nu, j, s.t2_s, iz_spin=s.iz_spin, names=s.names)

    def matrix(self, x) -> np.ndarray:
        return np.asarray(self.system(jnp.asarray(x)).j_hz)


def check_network_data(data: Dataset, space: NetworkSpace, solver) -> None:
    s = space.spec.system
    if data.n_spins != s.n_spins:
        raise ValueError(
            f"The spin system has {s.n_spins} spins but the data are for {data.n_spins}."
        )
    if data.iz1 is not None and data.iz_spin != s.iz_spin:
        raise ValueError(
            f"The data's `iz1` is the polarisation of spin {data.iz_spin}, but the spin "
            f"system's `iz_spin` is {s.iz_spin}: set `iz_spin` in the file to the observed "
            "spin."
        )
    if not space.names:
        raise ValueError(
            "Nothing to fit: no shift or coupling of the spin system has a prior box. Give "
            "the free ones `range_hz` (or `range_ppm`) in the file."
        )
    if solver is not None:
        if not isinstance(solver, AbstractSolver):
            raise ValueError(f"Argument `solver` must be a solver object, got {solver!r}.")
        solver.check(s, data.grid)


def _misfit_fn(data: Dataset, space: NetworkSpace, solver):
    """`misfit(x, w)`: half the sum of squared residuals weighted by `w(t)` (ones for the
    data, $e^{-t/\tau}$ for a broadened stage); the weights are an argument, so one
    compilation serves every stage."""
    obs = [jnp.asarray(data.mx), jnp.asarray(data.my)]
    if data.iz1 is not None:
        obs.append(jnp.asarray(data.iz1))

    def misfit(x, w):
        tr = simulate(space.system(x), data.grid, solver)
        sims = [tr.mx, tr.my] + ([tr.iz1] if data.iz1 is not None else [])
        return 0.5 * sum(jnp.sum((w * (a - b)) ** 2) for a, b in zip(sims, obs, strict=True))

    return misfit


def fit_network(data, spec, *, solver=None, init=None, n_starts=None, steps=25,
                broadening=(0.1,), seed=0, laplace=True):  # fmt: skip
    """Multi-start L-BFGS over the free parameters of `spec`, from the file's values (or
    `init`, a vector in the order of the names) and `n_starts - 1` random points of the
    boxes (8 starts by default): each descended on the line-broadened misfit (weights
    $e^{-t/\\tau}$, $\\tau$ in `broadening`), then on the data. Laplace errors from the
    Hessian of the misfit at the best point."""
    from ._fit import FitResult

    space = NetworkSpace(spec)
    check_network_data(data, space, solver)
    n_starts = 8 if n_starts is None else n_starts
    if isinstance(n_starts, bool) or not isinstance(n_starts, int) or n_starts < 1:
        raise ValueError(f"Argument `n_starts` must be a positive int, got {n_starts!r}.")
    first = space.start if init is None else np.asarray(init, np.float64).reshape(-1)
    if first.shape != space.lo.shape:
        raise ValueError(
            f"Argument `init` needs {len(space.names)} values ({space.names}), got {first.shape}."
        )
    lo, hi = jnp.asarray(space.lo), jnp.asarray(space.hi)
    rng = np.random.default_rng(seed)
    starts = np.vstack([first[None], rng.uniform(space.lo, space.hi, (n_starts - 1, lo.size))])
    p = np.clip((starts - space.lo) / (space.hi - space.lo), 1e-6, 1 - 1e-6)
    u0 = jnp.asarray(np.log(p) - np.log1p(-p))

    def to_hz(u):
        return lo + (hi - lo) * jax.nn.sigmoid(u)

    def descend(u, w, misfit):
        f = lambda v: misfit(to_hz(v), w)  # noqa: E731
        opt = optax.lbfgs()
        value_and_grad = optax.value_and_grad_from_state(f)

        def step(carry, _):
            v, state = carry
            value, grad = value_and_grad(v, state=state)
            updates, state = opt.update(grad, state, v, value=value, grad=grad, value_fn=f)
            return (optax.apply_updates(v, updates), state), value

        return jax.lax.scan(step, (u, opt.init(u)), length=steps)[0][0]

    t0 = time.perf_counter()
    misfit = _misfit_fn(data, space, solver)
    times = jnp.asarray(data.grid.times)
    ones = jnp.ones_like(times)
    stages = jax.jit(jax.vmap(lambda u, w: descend(u, w, misfit), in_axes=(0, None)))
    for tau in (*broadening, None):
        u0 = stages(u0, ones if tau is None else jnp.exp(-times / tau))
    xs = jax.vmap(to_hz)(u0)

    def plain(x):
        return misfit(x, ones)

    losses = np.asarray(jax.jit(jax.vmap(plain))(xs))
    best = int(np.argmin(losses))
    x = np.asarray(xs[best])
    seconds = time.perf_counter() - t0
    n_obs = data.grid.n * (2 if data.iz1 is None else 3)
    sigma2 = 2 * float(losses[best]) / n_obs
    cov = None
    if laplace:
        h = np.asarray(jax.jit(jax.hessian(plain))(jnp.asarray(x)))
        cov = sigma2 * np.linalg.pinv(0.5 * (h + h.T))
    system = space.system(jnp.asarray(x))
    return FitResult(
        offsets_hz=np.asarray(system.offsets_hz),
        j_hz=np.asarray(system.j_hz),
        loss=float(losses[best]),
        seconds=seconds,
        sigma=float(np.sqrt(sigma2)),
        names=space.names,
        covariance=cov,
        start=best,
        n_starts=n_starts,
    )

"""Inference for any network of couplings: least squares and NUTS over any subset of the
shifts and couplings of a `SystemSpec` (fixed, free in a box, or tied to another).

`bn.fit(data, spec)` and `bn.sample_posterior(data, spec)` come here when the priors are
a `SystemSpec` (from `bn.load_spin_system`); the chain's machinery (the global search,
modes, surrogates) stays with `Priors`.
"""

import dataclasses
import functools
import itertools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from .._physics._grid import TimeGrid
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

    def free(self, offsets_hz, j_hz) -> np.ndarray:
        """The free-parameter vector of a system's offsets `(N,)` and couplings `(N, N)`."""
        j = np.asarray(j_hz)
        roots = [j[pairs[0]] for pairs in self.coupling_pairs]
        return np.r_[np.asarray(offsets_hz)[self.free_offsets], roots].astype(np.float64)

    def split(self, x) -> tuple[np.ndarray, np.ndarray]:
        """The offsets `(N,)` and the coupling matrix `(N, N)` in Hz at `x`."""
        system = self.system(jnp.asarray(x))
        return np.asarray(system.offsets_hz), np.asarray(system.j_hz)


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

    def descend(u, w, c):
        f = lambda v: _misfit(plan, c, _to_hz(c, v), w)  # noqa: E731
        opt = optax.lbfgs()
        value_and_grad = optax.value_and_grad_from_state(f)

        def step(carry, _):
            v, state = carry
            value, grad = value_and_grad(v, state=state)
            updates, state = opt.update(grad, state, v, value=value, grad=grad, value_fn=f)
            return (optax.apply_updates(v, updates), state), value

        return jax.lax.scan(step, (u, opt.init(u)), length=plan.steps)[0][0]

    stage = jax.jit(jax.vmap(descend, in_axes=(0, None, None)))
    batched = jax.jit(jax.vmap(functools.partial(_misfit, plan), in_axes=(None, 0, None)))

    def batch(xs, w, c):
        return batched(c, xs, w)

    def hessian(x, c):  # Gauss-Newton, as for a chain (`_descent.gauss_newton`)
        a = jax.jacfwd(lambda x: _residuals(plan, c, x).reshape(-1))(x)
        return a.T @ a

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


_PAD = 512  # rows per screening batch (one compilation)
_MAX_ROUNDS = 8  # further descents on the data until no start improves
_MAX_HOPS = 4  # rounds of hops from the best solution (each must improve to go on)


def fit_network(data, spec, *, solver=None, init=None, n_starts=None, steps=25,
                broadening=(0.03, 0.1), seed=0, laplace=True, progress_bar=None):  # fmt: skip
    """Least squares over the free parameters of `spec` by multi-start L-BFGS.

    **Without `init`**, a global search from the data alone, as the chain's (the file's
    values are one start among many; the FID misfit has a false minimum every ~$1/T$
    Hz): `max(64 n_starts, 1024)` candidates (the file's values, and points whose
    offsets are drawn from the spectrum's lines inside each box, couplings from their
    boxes, half at the file's values) are screened on the line-broadened misfit
    (weights $e^{-t/\\tau}$, the first $\\tau$ of `broadening`); the best `4 n_starts`
    descend on it; the best `n_starts` of those (on the last $\\tau$'s misfit) go through
    the remaining stages and then the data, descending on the data again until no start
    improves; then hops (`_hops`: the best solution with one parameter moved, or two
    offsets swapped), the best `n_starts` of them descended the same way, while the
    misfit improves. **With `init`** (a vector of the free parameters, in the order of
    the names), from it and `n_starts - 1` random points of the boxes, through every
    stage. 8 starts by default; `n_starts` in the result counts the descents.

    **Returns** a `FitResult` with the distinct optima as `modes` (Laplace
    probabilities, $\\sigma$ integrated out) and the Laplace covariance of the best.
    """
    from ._fit import FitResult
    from ._search import _disabled, _distinct, _pad

    space = NetworkSpace(spec)
    check_network_data(data, space, solver)
    n_starts = 8 if n_starts is None else n_starts
    for name, value in (("n_starts", n_starts), ("steps", steps)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"Argument `{name}` must be a positive int, got {value!r}.")
    if any(not (np.isfinite(t) and t > 0) for t in broadening):
        raise ValueError(f"Argument `broadening` takes positive times in s, got {broadening}.")
    lo = jnp.asarray(space.lo)

    def to_u(x):
        p = np.clip((np.asarray(x) - space.lo) / (space.hi - space.lo), 1e-6, 1 - 1e-6)
        return jnp.asarray(np.log(p) - np.log1p(-p))

    t0 = time.perf_counter()
    plan, consts = _plan_and_consts(data, space, solver, steps)
    stage_c, batch_c, hessian_c = _functions(plan)
    times = jnp.asarray(data.grid.times)

    def to_hz(u):
        return _to_hz(consts, u)

    def weights(tau):
        return jnp.ones_like(times) if tau is None else jnp.exp(-times / tau)

    def stage(u, w):
        return stage_c(u, w, consts)

    def screen(xs, tau):
        """The misfit at every row of `xs` (Hz), in batches of one shape."""
        k = len(xs)
        padded = jnp.asarray(np.vstack([xs, np.repeat(xs[-1:], -k % _PAD, axis=0)]))
        w = weights(tau)
        out = [batch_c(padded[i : i + _PAD], w, consts) for i in range(0, k, _PAD)]
        return np.concatenate([np.asarray(o) for o in out])[:k]

    def finish(u, taus):
        """Descents from `u` through the stages `taus`, then on the data until no start
        improves (the misfit is ill-conditioned: a 0.5 Hz coupling beside 8 Hz ones; 25
        steps left the ring's fit 0.03 Hz short). The end points in Hz and their misfits."""
        for tau in taus:
            u = stage(u, weights(tau))
            bar.update()
        xs = np.asarray(jax.vmap(to_hz)(u))
        losses = screen(xs, None)
        for _ in range(_MAX_ROUNDS):
            u_next = stage(u, weights(None))
            xs_next = np.asarray(jax.vmap(to_hz)(u_next))
            next_losses = screen(xs_next, None)
            better = next_losses < losses
            improved = np.any(next_losses < losses * (1 - 1e-9))
            u = jnp.where(jnp.asarray(better)[:, None], u_next, u)
            xs = np.where(better[:, None], xs_next, xs)
            losses = np.where(better, next_losses, losses)
            bar.update()
            if not improved:
                break
        return xs, losses

    rng = np.random.default_rng(seed)
    bar = tqdm(desc="fit", unit="stage", disable=_disabled(progress_bar), leave=False)
    with bar:
        if init is None:
            coarse, fine = (broadening[0], broadening[-1]) if broadening else (None, None)
            cands = _candidates(data, space, rng, max(64 * n_starts, 1024))
            best = np.argsort(screen(cands, coarse))[: 4 * n_starts]
            u = stage(to_u(cands[best]), weights(coarse))
            bar.update()
            u = u[np.argsort(screen(np.asarray(jax.vmap(to_hz)(u)), fine))[:n_starts]]
            xs, losses = finish(u, (*broadening[1:], None))
            descended = 5 * n_starts
            # Hops: the best solution with one parameter moved (an offset by whole periods
            # 1/T, a coupling across its box) or two offsets swapped, screened, the best
            # descended again, until the misfit stops improving.
            for _ in range(_MAX_HOPS):
                hops = _hops(xs[np.argmin(losses)], space, data.grid)
                pick = np.argsort(screen(hops, fine))[:n_starts]
                hop_xs, hop_losses = finish(to_u(_pad(hops[pick], n_starts)), (fine, None))
                descended += n_starts
                improved = hop_losses.min() < losses.min() * (1 - 1e-9)
                xs, losses = np.vstack([xs, hop_xs]), np.r_[losses, hop_losses]
                if not improved:
                    break
        else:
            first = np.asarray(init, np.float64).reshape(-1)
            if first.shape != space.lo.shape:
                raise ValueError(
                    f"Argument `init` needs {len(space.names)} values ({space.names}), got "
                    f"{first.shape}."
                )
            u = to_u(np.vstack([first, rng.uniform(space.lo, space.hi, (n_starts - 1, lo.size))]))
            xs, losses = finish(u, (*broadening, None))
            descended = n_starts
    keep = _distinct(xs, losses)
    xs, losses = xs[keep], losses[keep]
    seconds = time.perf_counter() - t0
    n_obs = data.grid.n * (2 if data.iz1 is None else 3)
    modes = ()
    if laplace:
        from ._modes import modes_from

        modes = tuple(
            modes_from(
                xs,
                losses,
                lambda x: np.asarray(hessian_c(jnp.asarray(x), consts)),
                space.split,
                space.names,
                n_obs,
            )  # fmt: skip
        )
    offsets, j = space.split(xs[0])
    return FitResult(
        offsets_hz=offsets,
        j_hz=j,
        loss=float(losses[0]),
        seconds=seconds,
        sigma=float(np.sqrt(2 * float(losses[0]) / n_obs)),
        names=space.names,
        covariance=modes[0].covariance if modes else None,
        modes=modes,
        n_starts=descended,
    )


def _candidates(data, space: NetworkSpace, rng, n_random: int) -> np.ndarray:
    """The file's values, then `n_random` points: each free offset drawn from the
    spectrum's lines inside its box (uniform where the box holds no line), each free
    coupling uniform in its box (the first half at the file's values)."""
    from ._multiplets import line_density

    freqs, density = line_density(data)
    k = space.n_offsets
    draws = np.empty((n_random, space.lo.size))
    for i in range(k):
        lo, hi = space.lo[i], space.hi[i]
        w = np.where((freqs >= lo) & (freqs <= hi), density, 0.0)
        draws[:, i] = (
            rng.choice(freqs, n_random, p=w / w.sum()) + rng.normal(0, 2.0, n_random)
            if w.sum() > 0
            else rng.uniform(lo, hi, n_random)
        )
    draws[:, k:] = rng.uniform(space.lo[k:], space.hi[k:], (n_random, space.lo.size - k))
    draws[: n_random // 2, k:] = space.start[k:]
    return np.clip(np.vstack([space.start[None], draws]), space.lo, space.hi)


def _hops(x: np.ndarray, space: NetworkSpace, grid) -> np.ndarray:
    """`x` with one parameter moved: each free offset by +-1, 2, 3 periods $1/T$ (the
    FID's false minima), each free coupling to 12 points across its box; and every two
    free offsets swapped where each lies in the other's box."""
    period = 1.0 / (grid.n * grid.dt)
    k = space.n_offsets
    rows = []
    for i in range(k):
        for m in (-3, -2, -1, 1, 2, 3):
            rows.append(x.copy())
            rows[-1][i] += m * period
    for i in range(k, x.size):
        for v in np.linspace(space.lo[i], space.hi[i], 12):
            rows.append(x.copy())
            rows[-1][i] = v
    for a, b in itertools.combinations(range(k), 2):
        if space.lo[a] <= x[b] <= space.hi[a] and space.lo[b] <= x[a] <= space.hi[b]:
            rows.append(x.copy())
            rows[-1][[a, b]] = x[[b, a]]
    return np.clip(np.array(rows), space.lo, space.hi)

"""Inference for any network of couplings: least squares and NUTS over any subset of the
shifts and couplings of a `SystemSpec` (fixed, free in a box, or tied to another).

`bn.fit(data, spec)` and `bn.sample_posterior(data, spec)` come here when the priors are
a `SystemSpec` (from `bn.load_spin_system`); the chain's machinery (the global search,
modes, surrogates) stays with `Priors`. This module holds the global fit; the parameter
space is `_network_space`, the misfit and its compiled functions `_network_misfit`.
"""

import itertools
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from ._descent import part_rows, split_rows
from ._network_misfit import _functions, _plan_and_consts, _to_hz
from ._network_space import NetworkSpace, check_network_data

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

    # Every batch in parts of the full descents' size: one compilation of `stage_c`.
    part = part_rows(n_starts)

    def stage(u, w):
        return split_rows(stage_c, u, w, consts, rows=0, part=part)

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

"""Where NUTS chains start, and which chains sampled the same mode."""

import math

import jax.numpy as jnp
import numpy as np

from ._descent import Space, loss_hz
from ._fit import fit
from ._modes import Mode, laplace_modes
from ._sampler import laplace_z


def start_modes(data, priors, solver, init, seed, progress_bar=False) -> list[Mode]:
    """The modes to start from: the global fit's, or one at `init` (Laplace there)."""
    if init is None:
        return list(fit(data, priors, solver=solver, seed=seed, progress_bar=progress_bar).modes)
    if isinstance(init, list | tuple):  # modes
        return list(init)
    if not isinstance(init, dict):  # a FitResult: its modes
        if init.modes:
            return list(init.modes)
        init = {"offsets_hz": init.offsets_hz, "j_hz": init.j_hz}
    space = Space(priors)
    x = []
    if space.free_offsets:
        x.append(np.asarray(init["offsets_hz"], float).reshape(-1))
    if space.free_j:
        x.append(np.atleast_1d(np.asarray(init["j_hz"], float)).reshape(-1))
    x = space.clip(np.concatenate(x))[None]
    loss = float(loss_hz(space.plan(data, 1), space.consts(data), solver, None, x[0]))
    return laplace_modes(data, space, solver, x, np.array([loss]))


def chain_starts(priors, mode: Mode, chains, marginal, rng):
    """Chain starts spread by one Laplace sd, and the Laplace covariance as the inverse
    mass matrix, both in NUTS's unconstrained coordinates (sites in sorted order)."""
    space = Space(priors)
    x = np.r_[
        mode.offsets_hz if space.free_offsets else [],
        np.atleast_1d(mode.j_hz) if space.free_j else [],
    ]
    centre, cov_z = laplace_z(x, mode.covariance, space.lo, space.hi)
    n_off = priors.n_spins if space.free_offsets else 0
    # NUTS flattens its sites in sorted order: j_hz before offsets_hz.
    perm = np.r_[np.arange(n_off, len(x)), np.arange(n_off)]
    cov_sorted = cov_z[np.ix_(perm, perm)]
    jitter = rng.multivariate_normal(np.zeros(len(x)), cov_sorted, size=chains)
    starts = centre[perm][None] + jitter
    shapes = {}
    if space.free_j:
        shapes["j_hz"] = (priors.n_spins - 1,) if priors.per_bond else ()
    if space.free_offsets:
        shapes["offsets_hz"] = (priors.n_spins,)
    z0, i = {}, 0
    for k, shape in shapes.items():
        size = math.prod(shape)
        z0[k] = jnp.asarray(starts[:, i : i + size].reshape((chains, *shape)))
        i += size
    inverse_mass = jnp.asarray(cov_sorted)
    if not marginal and "sigma" not in priors.fixed:  # sigma sampled: log-scale, sd ~ 1/sqrt(n)
        z0["sigma"] = jnp.full((chains,), np.log(max(np.sqrt(2 * mode.loss / (2 * len(x))), 1e-6)))
        inverse_mass = None
    return z0, inverse_mass


def chain_clusters(samples: dict, threshold: float = 5.0) -> list[list[int]]:
    """Groups of chains that sample the same mode, largest first.

    Two chains agree when every free parameter's mean differs by less than `threshold`
    pooled within-chain sds (chains of one mode differ by ~sd/sqrt(ESS); chains in two
    modes of these posteriors, by hundreds of sds).
    """
    x = np.concatenate(
        [
            np.asarray(samples[k]).reshape(*np.shape(samples[k])[:2], -1)
            for k in ("offsets_hz", "j_hz")
            if k in samples
        ],
        axis=-1,
    )
    means, sds = x.mean(1), x.std(1)
    pooled = np.sqrt(np.mean(sds**2, axis=0)) + 1e-12
    clusters: list[list[int]] = []
    for c in range(x.shape[0]):
        for group in clusters:
            if np.all(np.abs(means[c] - means[group[0]]) < threshold * pooled):
                group.append(c)
                break
        else:
            clusters.append([c])
    return sorted(clusters, key=len, reverse=True)


def take(tree: dict, chains: list[int]) -> dict:
    return {k: np.asarray(v)[chains] for k, v in tree.items()}


def mode_at(data, priors, solver, samples, chains) -> Mode:
    """The mode that chains `chains` found: refined from their mean, Laplace there."""
    start = {
        k: np.asarray(samples[k])[chains].mean((0, 1))
        for k in ("offsets_hz", "j_hz")
        if k in samples
    }
    start.setdefault("j_hz", np.asarray(priors.j_hz).reshape(-1, 2).mean(1))
    start.setdefault("offsets_hz", np.zeros(priors.n_spins))
    return fit(data, priors, solver=solver, init=start, n_starts=1, broadening=()).modes[0]

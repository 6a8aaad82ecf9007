"""Simulation-based calibration of a network's posterior, on one compiled sampler."""

import time

import jax
import jax.numpy as jnp
import numpy as np

from .._physics._simulate import simulate
from ._network_nuts import _observed, network_sampler, network_starts
from ._network_space import NetworkSpace


def calibrate_network(grid, spec, *, sigma, sampler, n_datasets, rank_draws, bins,
                      observe_iz1, seed, progress_bar, checkpoint):  # fmt: skip
    """Simulation-based calibration of the network posterior: for each data set, the
    free parameters drawn from their boxes, data simulated exactly at the known `sigma`,
    NUTS (one compiled sampler for every data set) with the chains started at the true
    values, and the ranks of the truths. It asks whether the posterior is right, not
    whether a fit finds it (there is no global search for networks)."""
    from tqdm.auto import tqdm

    from .._io import provenance
    from ._data import synthesize
    from ._sbc_result import Checkpoint, SBCResult, rank_record

    space = NetworkSpace(spec)
    if not space.names:
        raise ValueError("calibrate: no shift or coupling of the spin system has a box.")
    if sigma is None or not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(
            "calibrate: give the known noise, `sigma=...` (a positive number): data sets "
            f"are simulated at a known sigma; got {sigma!r}."
        )
    chains, draws = sampler.chains, sampler.draws
    keep = np.linspace(0, chains * draws - 1, rank_draws).astype(int)
    fingerprint = {
        "network": spec.names,
        "lo": space.lo.tolist(),
        "hi": space.hi.tolist(),
        "base_offsets": space.base_offsets.tolist(),
        "fixed_j": space.fixed_j.tolist(),
        "grid": [grid.n, grid.dt],
        "sigma": float(sigma),
        "settings": [chains, sampler.warmup, draws, rank_draws, observe_iz1],
        "seed": seed,
    }
    t0 = time.perf_counter()
    store = Checkpoint(checkpoint, fingerprint) if checkpoint is not None else None
    records = {} if store is None else store.load()
    todo = [k for k in range(n_datasets) if k not in records]
    run, laplace = _network_sbc_sampler(space, grid, float(sigma), sampler, observe_iz1)
    eps = 1e-6 * (space.hi - space.lo)
    with (
        jax.numpy_rank_promotion("allow"),
        tqdm(total=n_datasets, initial=n_datasets - len(todo), disable=not progress_bar,
             desc="SBC", unit="data set") as bar,
    ):  # fmt: skip
        for k in todo:
            rng = np.random.default_rng([seed, k])
            truth = rng.uniform(space.lo, space.hi)
            data = synthesize(
                space.system(jnp.asarray(truth)), grid, float(sigma),
                seed=int(rng.integers(2**31)), observe_iz1=observe_iz1,
            )  # fmt: skip
            x = np.clip(truth, space.lo + eps, space.hi - eps)
            z0, inverse_mass = laplace(x, chains, rng)
            samples, _ = run.run(
                jax.random.PRNGKey(int(rng.integers(2**31))), _observed(data), z0, inverse_mass
            )
            post = np.concatenate(
                [np.asarray(samples[n]).reshape(chains * draws, -1) for n in ("offsets_hz", "j_hz")
                 if n in samples], axis=1,
            )  # fmt: skip
            records[k] = rank_record(post, truth, keep)
            if store is not None:
                store.save(records)
            bar.update()
    rows = [records[k] for k in range(n_datasets)]

    made = provenance() | {
        "seconds": time.perf_counter() - t0,
        "resumed": n_datasets - len(todo),
        "settings": fingerprint | {"n_datasets": n_datasets},
    }
    return SBCResult.from_records(space.names, rows, rank_draws, bins, made)


def _network_sbc_sampler(space, grid, sigma, sampler, observe_iz1):
    """The compiled NUTS of a network's posterior at a known `sigma` (one compilation for
    every data set: the observations are its arguments; the chains on one device), and
    `laplace(x, chains, rng)`: chain starts around `x` and the inverse mass matrix from
    the Fisher information there (sigma^2 (A^T A)^-1, A the exact Jacobian of the
    traces, compiled once), both in NUTS's unconstrained coordinates."""
    from ._sampler import one_device_method

    method = one_device_method(sampler)
    run = network_sampler(space, grid, None, sigma, sampler, observe_iz1, method)

    def traces(x):
        tr = simulate(space.system(x), grid)
        return jnp.concatenate([tr.mx, tr.my] + ([tr.iz1] if observe_iz1 else []))

    jacobian = jax.jit(jax.jacfwd(traces))

    def laplace(x, chains, rng):
        a = np.asarray(jacobian(jnp.asarray(x)))
        cov = sigma**2 * np.linalg.pinv(a.T @ a)
        return network_starts(space, x, cov, space.lo, space.hi, chains, rng)

    return run, laplace

"""The posterior predictive of a chain posterior: the forward model at thinned draws, plus
noise."""

import jax.numpy as jnp
import numpy as np

from .._physics._simulate import simulate_batch
from ._correct import parameters


def predictive(data, priors, solver, samples, predictive_draws, model_error, rng):
    """Posterior-predictive traces: the forward model at thinned draws, plus noise."""
    import xarray as xr

    offsets, j, sigma = parameters(samples, priors)
    keep = np.linspace(0, len(offsets) - 1, min(predictive_draws, len(offsets))).astype(int)
    offsets, j, sigma = offsets[keep], j[keep], sigma[keep]
    tr = simulate_batch(jnp.asarray(offsets, float), jnp.asarray(j, float), data.grid, solver)
    out = {}
    names = ("mx", "my") + (("iz1",) if data.iz1 is not None else ())
    for i, name in enumerate(names):
        sd = (
            sigma[:, None]
            if model_error is None
            else np.sqrt(sigma[:, None] ** 2 + np.asarray(model_error[i]) ** 2)
        )
        noisy = np.asarray(getattr(tr, name)) + sd * rng.normal(size=(len(keep), data.grid.n))
        out[name] = (("chain", "draw", "time"), noisy[None])
    return xr.Dataset(out, coords={"time": data.grid.times})

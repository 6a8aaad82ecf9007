"""Problem-local surrogates for any network of couplings: `sample_posterior(data, spec,
solver="local")`. Around each mode of the exact fit, a `LineNet` (every line's frequency
and weight a quadratic in the free parameters, fitted to exact line lists) on a box of
10 Laplace sds; NUTS on it; every kept draw solved exactly and the draws reweighed by
PSIS (`weigh`), as for a chain."""

import dataclasses
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._surrogate._local import LineNet, fit_line_net, region_box
from ._correct import Correction, edge_problem, weigh
from ._network_misfit import _functions, _plan_and_consts
from ._network_space import NetworkSpace


class LocalNet(eqx.Module):
    """A network's problem-local surrogate: `net(x)` the traces `(3, T)` at the free
    parameters `x`, valid on the box `[lower, upper]` (the model's priors there)."""

    net: LineNet
    lower: jax.Array
    upper: jax.Array
    info: str = eqx.field(static=True, default="")


def local_net(space: NetworkSpace, mode, grid, *, seed: int, progress_bar, widen: float = 10.0):
    """A `LocalNet` on `widen` Laplace sds around `mode` (inside the prior boxes)."""
    import json

    x0 = space.free(mode.offsets_hz, mode.j_hz)
    if mode.covariance is None:  # a fit without Laplace errors: 1 % of each box as its sd
        sd = 0.01 * (space.hi - space.lo)
    else:
        sd = np.sqrt(np.diag(mode.covariance))
    lower, upper = region_box(x0, sd, widen, (space.lo, space.hi))
    t0 = time.perf_counter()
    net, record = fit_line_net(
        lower, upper, grid, seed=seed, progress_bar=bool(progress_bar),
        system=lambda theta: space.system(jnp.asarray(theta)),
    )  # fmt: skip
    record["seconds"] = time.perf_counter() - t0
    info = json.dumps({"architecture": "lines", "training": record, "seed": seed})
    return LocalNet(net, jnp.asarray(lower), jnp.asarray(upper), info)


def correct_network(data, space: NetworkSpace, net: LocalNet, samples: dict, *, min_ess,
                    rng) -> Correction:  # fmt: skip
    """Weigh draws of a local surrogate's posterior (`samples`, with the surrogate's `rss`)
    by the exact likelihood, $\\sigma$ integrated out: the ratio is
    $(\\mathrm{RSS}_\\mathrm{exact} / \\mathrm{RSS}_\\mathrm{local})^{-n/2}$; a failure
    too where the draws reach the edge of `net`'s region (`edge_problem`)."""
    t0 = time.perf_counter()
    shape = np.shape(samples["rss"])
    parts = [np.asarray(samples[k]).reshape(-1, np.shape(samples[k])[-1])
             for k in ("offsets_hz", "j_hz") if k in samples]  # fmt: skip
    x = np.concatenate(parts, axis=1)
    plan, consts = _plan_and_consts(data, space, None)
    _, batch, _ = _functions(plan)
    ones = jnp.ones(data.grid.n)
    rss = np.concatenate(
        [
            2 * np.asarray(batch(jnp.asarray(x[i : i + 256]), ones, consts))
            for i in range(0, len(x), 256)
        ]  # fmt: skip
    )
    n_obs = data.grid.n * (2 if data.iz1 is None else 3)
    log_ratio = -0.5 * n_obs * (np.log(rss) - np.log(np.asarray(samples["rss"]).reshape(-1)))
    c = weigh(log_ratio, shape, rss, min_ess, rng, t0)
    edge = edge_problem(x, net.lower, net.upper, space.lo, space.hi, space.names)
    return dataclasses.replace(c, edge=edge)

"""Competing solutions of a fit and their posterior probabilities (Laplace evidence)."""

import dataclasses

import jax.numpy as jnp
import numpy as np

from ._descent import Space, gauss_newton


@dataclasses.dataclass(frozen=True)
class Mode:
    """One local optimum of the posterior, with its Laplace approximation.

    **Fields:** `offsets_hz`, `j_hz` (the optimum in Hz), `loss` (its misfit
    $\\frac12\\sum r^2$), `log_evidence` (the Laplace estimate of the log posterior mass
    around it, up to a constant shared by every mode of the same data and priors),
    `probability` (its share of the total over the modes reported), `covariance` (of the
    free parameters, in the order of `names`; `stderr` its square roots).
    """

    offsets_hz: np.ndarray
    j_hz: np.ndarray
    loss: float
    log_evidence: float
    probability: float
    names: list
    covariance: np.ndarray

    @property
    def stderr(self) -> np.ndarray:
        return np.sqrt(np.diag(self.covariance))


def laplace_modes(
    data,
    space: Space,
    solver,
    xs: np.ndarray,
    losses: np.ndarray,
    *,
    max_modes: int = 8,
    min_probability: float = 1e-4,
) -> list[Mode]:
    """The distinct optima `xs` (best first) as `Mode`s with Laplace probabilities.

    The noise is integrated out under the Jeffreys prior unless `sigma` is fixed (as
    `sample_posterior` does): the likelihood is $L^{-n/2}$ over the $n$ observed points,
    and the Laplace log evidence of a mode at $\\hat x$ is
    $-\\frac n2 \\log L(\\hat x) - \\frac12 \\log\\det H + \\frac d2 \\log 2\\pi$ with $H$
    the Hessian of $\\frac n2 \\log L$ there (of $L/\\sigma^2$ for a known $\\sigma$), in its
    Gauss-Newton form (the residuals' Jacobian $A$: $\\nabla^2 L \\approx A^T A$).
    Every mode lies in the same uniform prior boxes, so the prior density cancels.
    Optima whose likelihood is below the best's by more than $e^{-40}$ are left out;
    of the rest, those with probability under `min_probability` (not the best).
    """
    n_obs = data.grid.n * (2 if data.iz1 is None else 3)
    plan, consts = space.plan(data, 1), space.consts(data)

    def hess(x):
        return np.asarray(gauss_newton(plan, consts, solver, jnp.asarray(x)))

    return modes_from(
        xs, losses, hess, lambda x: _split(space, x), space.names, n_obs,
        space.priors.fixed.get("sigma"), max_modes=max_modes, min_probability=min_probability,
    )  # fmt: skip


def modes_from(xs, losses, hess, split, names, n_obs, sigma=None, *, max_modes=8,
               min_probability=1e-4) -> list[Mode]:  # fmt: skip
    """`laplace_modes` for any model: `hess(x)` the (Gauss-Newton) Hessian of the misfit at
    `x`, `split(x)` the `(offsets_hz, j_hz)` of a free-parameter vector, `sigma` the noise (None:
    integrated out)."""

    def log_lik(loss):
        return -loss / sigma**2 if sigma is not None else -0.5 * n_obs * np.log(loss)

    best = log_lik(losses[0])
    rows = []
    for x, loss in zip(xs[:max_modes], losses[:max_modes], strict=True):
        if log_lik(loss) < best - 40 and rows:
            continue
        h_l = hess(x)
        h_l = 0.5 * (h_l + h_l.T)
        h = h_l / sigma**2 if sigma is not None else 0.5 * n_obs * h_l / loss
        w, v = np.linalg.eigh(h)
        w = np.clip(w, 1e-12 * max(w.max(), 1e-300), None)  # a flat or edge direction
        log_z = log_lik(loss) - 0.5 * np.sum(np.log(w)) + 0.5 * len(x) * np.log(2 * np.pi)
        rows.append((x, float(loss), float(log_z), (v / w) @ v.T))
    log_zs = np.array([r[2] for r in rows])
    p = np.exp(log_zs - log_zs.max())
    p /= p.sum()
    modes = []
    for (x, loss, log_z, cov), prob in zip(rows, p, strict=True):
        if prob < min_probability and modes:
            continue
        modes.append(Mode(*split(x), loss, log_z, float(prob), names, cov))
    total = sum(m.probability for m in modes)
    return [dataclasses.replace(m, probability=m.probability / total) for m in modes]


def _split(space: Space, x) -> tuple[np.ndarray, np.ndarray]:
    """The offsets and J of a free-parameter vector, the fixed values filled in."""
    p, n, k = space.priors, space.priors.n_spins, 0
    if space.free_offsets:
        offsets, k = np.asarray(x[:n], float), n
    else:
        offsets = np.asarray(p.fixed["offsets_hz"], float)
    if space.free_j:
        j = np.asarray(x[k:], float) if p.per_bond else np.asarray(x[k], float)
    else:
        j = np.asarray(p.fixed["j_hz"], float)
    return offsets, j


def renormalised(modes: list[Mode]) -> list[Mode]:
    log_z = np.array([m.log_evidence for m in modes])
    p = np.exp(log_z - log_z.max())
    p /= p.sum()
    return [dataclasses.replace(m, probability=float(q)) for m, q in zip(modes, p, strict=True)]


def modes_dataset(modes: list[Mode], n_sampled: int):
    import xarray as xr

    j = np.array([np.atleast_1d(m.j_hz) for m in modes])
    return xr.Dataset(
        {
            "probability": ("mode", [m.probability for m in modes]),
            "log_evidence": ("mode", [m.log_evidence for m in modes]),
            "loss": ("mode", [m.loss for m in modes]),
            "sampled": ("mode", [k < n_sampled for k in range(len(modes))]),
            "offsets_hz": (("mode", "spin"), np.array([m.offsets_hz for m in modes])),
            "j_hz": (("mode", "bond"), j),
        },
        coords={"mode": np.arange(len(modes))},
    )

"""A surrogate's error as a noise level over the prior boxes, for the likelihood."""

import numpy as np

from .._surrogate._data import exact_traces
from .._surrogate._evaluate import _check_n_samples, held_out
from .._surrogate._solver import Surrogate
from .._surrogate._train import _predict
from ._model import Priors


def surrogate_error(
    surrogate: Surrogate,
    priors: Priors | None = None,
    n_samples: int = 500,
    seed: int = 0,
    progress_bar: bool = False,
) -> np.ndarray:
    """The surrogate's error as a noise level: the RMS of (surrogate $-$ exact) over
    held-out parameters, per observable and time point.

    Parameters are drawn uniformly from `priors`' boxes (fixed values stay fixed), or
    from the surrogate's whole domain without `priors`, and solved exactly. Give the
    result to inference as `model_error`: the likelihood's variance becomes
    $\\sigma^2 + e(t)^2$, so a posterior stops trusting the surrogate beyond its accuracy.

    **Returns:** an array of shape `(3, T)` (mx, my, iz1).
    """
    if not isinstance(surrogate, Surrogate):
        raise ValueError(
            f"Argument `surrogate` must be a Surrogate, got {type(surrogate).__name__}."
        )
    if priors is None:
        thetas, traces = held_out(surrogate, n_samples, seed=seed, progress_bar=progress_bar)
    else:
        priors.check_domain(surrogate)
        _check_n_samples(n_samples)
        rng = np.random.default_rng([seed, 999_979])
        lower, upper = priors.box()
        thetas = lower + (upper - lower) * rng.random((n_samples, lower.size))
        traces = exact_traces(thetas, surrogate.grid, progress_bar=progress_bar)
    pred = _predict(surrogate.net, np.asarray(thetas, np.float32)).astype(np.float64)
    return np.sqrt(np.mean((pred - np.asarray(traces)) ** 2, axis=0))

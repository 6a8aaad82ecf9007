"""Held-out accuracy and long-time stability of a surrogate against the exact solver."""

import numpy as np

from ._data import exact_traces
from ._metrics import accuracy_report
from ._solver import Surrogate
from ._train import _predict


def evaluate_surrogate(
    surrogate: Surrogate,
    n_samples: int = 1000,
    seed: int = 0,
    thetas=None,
    traces=None,
    progress_bar: bool = False,
) -> dict:
    """Compare a surrogate with the exact solver on held-out parameters.

    **Arguments:**

    - `surrogate`: the `Surrogate`.
    - `n_samples`, `seed`: draw this many parameter vectors uniformly from its domain
      (a seed the training data do not use) and solve them exactly; or
    - `thetas`, `traces`: evaluate on these instead (from `load_training_data`, say).

    **Returns:** a dict: for each observable the `median`, `p95` and `max` of the relative
    L2 error over the trace; the same for `iz1 - 1` (`iz1` is about 98% constant, which
    flatters a relative error); and `stability`: for each observable the RMS error over
    the last third of the trace divided by that over the first third.
    """
    if not isinstance(surrogate, Surrogate):
        raise ValueError(
            f"Argument `surrogate` must be a Surrogate, got {type(surrogate).__name__}."
        )
    if thetas is None:
        thetas, traces = held_out(surrogate, n_samples, seed=seed, progress_bar=progress_bar)
    thetas = np.asarray(thetas)
    if traces is None:
        traces = exact_traces(thetas, surrogate.grid, progress_bar=progress_bar)
    pred = _predict(surrogate.net, thetas.astype(np.float32))
    return accuracy_report(pred, np.asarray(traces))


def held_out(surrogate: Surrogate, n_samples: int, *, seed: int = 0, progress_bar: bool = False):
    """Held-out test chains for `surrogate`: `n_samples` parameter vectors drawn uniformly
    from its domain (from a seed stream that no training data use) and their exact traces.

    **Returns:** `(thetas, traces)`, of shapes `(n_samples, N + 1)` and
    `(n_samples, 3, T)`; give them to `evaluate_surrogate` and `plot_stability`.
    """
    _check_n_samples(n_samples)
    rng = np.random.default_rng([seed, 999_983])
    lo, hi = surrogate.domain.lower, surrogate.domain.upper
    thetas = lo + (hi - lo) * rng.random((n_samples, lo.size))
    return thetas, exact_traces(thetas, surrogate.grid, progress_bar=progress_bar)


def _check_n_samples(n_samples) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"Argument `n_samples` must be a positive integer, got {n_samples!r}.")

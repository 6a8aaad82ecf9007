"""How far a surrogate's traces are from the exact ones: the error measures that training,
evaluation and the benchmarks share."""

import numpy as np

OBSERVABLES = ("mx", "my", "iz1")


def relative_errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """The relative L2 error of every trace, `(n, 3)`: $\\|p - t\\| / \\|t\\|$ over time."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    return np.linalg.norm(pred - true, axis=-1) / np.linalg.norm(true, axis=-1)


def iz1_deviation_errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """The relative L2 error of `iz1 - 1`; NaN for chains where `iz1` stays at 1
    (spin 1 uncoupled), where it is undefined."""
    dev = np.linalg.norm(np.asarray(true, np.float64)[:, 2] - 1.0, axis=-1)
    diff = np.linalg.norm(np.asarray(pred, np.float64)[:, 2] - true[:, 2], axis=-1)
    return np.where(dev > 1e-6, diff / np.maximum(dev, 1e-6), np.nan)


def accuracy_report(pred: np.ndarray, true: np.ndarray) -> dict:
    """The figures of `evaluate_surrogate` from predicted and exact `(n, 3, T)` traces."""
    err = relative_errors(pred, true)
    out = {"n": int(len(true))}
    for i, name in enumerate(OBSERVABLES):
        out[name] = _stats(err[:, i])
    out["iz1_minus_1"] = _stats(iz1_deviation_errors(pred, true))
    t = true.shape[-1]
    first, last = slice(0, t // 3), slice(t - t // 3, t)
    diff = np.asarray(pred, np.float64) - true
    out["stability"] = {
        name: float(np.sqrt(np.mean(diff[:, i, last] ** 2) / np.mean(diff[:, i, first] ** 2)))
        for i, name in enumerate(OBSERVABLES)
    }
    return out


def _stats(x: np.ndarray) -> dict:
    return {
        "median": float(np.nanmedian(x)),
        "p95": float(np.nanpercentile(x, 95)),
        "max": float(np.nanmax(x)),
    }

"""Argument checks shared by the public functions.

A check runs on concrete values; under `jit`, `vmap` or `grad` the values are tracers,
and only what is static (shapes, dtypes) is checked.
"""

import jax
import numpy as np


def is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_finite(name: str, x, fix: str = "") -> None:
    if is_concrete(x):
        arr = np.asarray(x)
        if not np.all(np.isfinite(arr)):
            bad = np.flatnonzero(~np.isfinite(arr)).tolist()
            raise ValueError(
                f"Argument `{name}` must be finite, but has non-finite entries at "
                f"positions {bad}.{(' ' + fix) if fix else ''}"
            )


def check_positive(name: str, x, allow_zero: bool = False) -> None:
    if is_concrete(x):
        arr = np.asarray(x)
        ok = arr >= 0 if allow_zero else arr > 0
        if not np.all(ok) or not np.all(np.isfinite(arr)):
            what = "non-negative" if allow_zero else "positive"
            raise ValueError(f"Argument `{name}` must be finite and {what}, but is {x!r}.")

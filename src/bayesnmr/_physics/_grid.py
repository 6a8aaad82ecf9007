"""The time grid of a simulation."""

import equinox as eqx
import numpy as np


class TimeGrid(eqx.Module):
    r"""The sampling times $t_k = k\,\Delta t$ for $k = 0 \dots n - 1$, in seconds.

    **Arguments:**

    - `n`: the number of points, a positive integer.
    - `dt`: the spacing in seconds, positive.

    Both are static: a `TimeGrid` carries no arrays, so a function of it is traced once
    per grid.
    """

    n: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)

    def __init__(self, n: int, dt: float):
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"Argument `n` must be a positive integer, but is {n!r}.")
        try:
            dt_f = float(dt)
        except (TypeError, ValueError):
            raise ValueError(
                f"Argument `dt` must be a positive number of seconds, got {dt!r}."
            ) from None
        if not np.isfinite(dt_f) or dt_f <= 0:
            raise ValueError(f"Argument `dt` must be a positive number of seconds, got {dt!r}.")
        self.n = int(n)
        self.dt = dt_f

    @property
    def times(self) -> np.ndarray:
        """The sampling times in seconds, shape `(n,)`."""
        return np.arange(self.n) * self.dt

    @property
    def duration(self) -> float:
        """The acquisition time $n\\,\\Delta t$ in seconds."""
        return self.n * self.dt

    @property
    def frequencies_hz(self) -> np.ndarray:
        """The FFT frequency axis in Hz, ascending (`fftshift`-ed)."""
        return np.fft.fftshift(np.fft.fftfreq(self.n, self.dt))

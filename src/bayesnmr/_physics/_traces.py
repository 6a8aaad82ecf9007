"""The observables of a simulation."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, Float

from ._grid import TimeGrid


class Traces(eqx.Module):
    r"""The three observables of a spin chain on a time grid.

    **Fields:**

    - `mx`, `my`: the real and imaginary parts of the normalised FID
      $M_+(t) = \mathrm{Tr}[\rho(t) F_+]/\mathrm{Tr}[F_x^2]$ from $\rho(0) = F_x$.
    - `iz1`: the local polarisation $\mathrm{Tr}[\rho(t) I_{1z}]/\mathrm{Tr}[I_{1z}^2]$
      from $\rho(0) = I_{1z}$.
    - `grid`: the `TimeGrid` they are sampled on.
    - `mx_err`, `my_err`, `iz1_err`: standard errors for stochastic solvers, else `None`.

    Under `jax.vmap` the arrays gain a leading batch axis.
    """

    mx: Float[Array, "*batch n"]
    my: Float[Array, "*batch n"]
    iz1: Float[Array, "*batch n"]
    grid: TimeGrid
    mx_err: Float[Array, "*batch n"] | None = None
    my_err: Float[Array, "*batch n"] | None = None
    iz1_err: Float[Array, "*batch n"] | None = None

    @property
    def times(self) -> np.ndarray:
        """The sampling times in seconds."""
        return self.grid.times

    @property
    def fid(self) -> Complex[Array, "*batch n"]:
        """The complex FID $M_+ = m_x + i\\,m_y$."""
        return self.mx + 1j * self.my

    def spectrum(self) -> Complex[Array, "*batch n"]:
        r"""The spectrum: the FFT of the FID, `fftshift`-ed to match `frequencies_hz`.

        The first point is halved (the usual correction for a FID starting at $t = 0$)
        and the result is scaled by $\Delta t$, so a line's integral does not depend on
        the grid. A positive offset appears at a positive frequency.
        """
        fid = self.fid.at[..., 0].multiply(0.5)
        return jnp.fft.fftshift(jnp.fft.fft(fid, axis=-1), axes=-1) * self.grid.dt

    @property
    def frequencies_hz(self) -> np.ndarray:
        """The frequency axis of `spectrum()` in Hz, ascending."""
        return self.grid.frequencies_hz

    def as_array(self) -> Float[Array, "*batch 3 n"]:
        """`(mx, my, iz1)` stacked on the second-to-last axis."""
        return jnp.stack([self.mx, self.my, self.iz1], axis=-2)

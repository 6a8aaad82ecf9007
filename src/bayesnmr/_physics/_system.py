"""The spin system: a 1D chain of coupled spins-1/2."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._checks import check_finite, check_positive, is_concrete


class SpinChain(eqx.Module):
    r"""A chain of $N$ spins-1/2 with nearest-neighbour isotropic couplings.

    $$H = \sum_{i=1}^N 2\pi\nu_i I_{iz} + \sum_{i=1}^{N-1} 2\pi J_i\,
    \mathbf{I}_i\cdot\mathbf{I}_{i+1}$$

    **Arguments:**

    - `offsets_hz`: the chemical-shift offsets $\nu_i$ in Hz, shape `(N,)`, $N \ge 1$.
      Spin 1 is the first entry.
    - `j_hz`: the coupling in Hz: a scalar (the same $J$ on every bond) or an array of
      the $N - 1$ bond couplings $J_i$ between spins $i$ and $i + 1$.
    - `t2_s`: the phenomenological transverse relaxation time in seconds; `None` (the
      default) for no relaxation. A finite value multiplies `mx` and `my` by
      $e^{-t/T_2}$.

    A `SpinChain` is an immutable pytree, so `jax.jit`, `jax.vmap` and `jax.grad` see
    its offsets and couplings as ordinary arrays.
    """

    offsets_hz: Float[Array, " n"]
    j_hz: Float[Array, "*bonds"]
    t2_s: Float[Array, ""] | None = None

    def __init__(self, offsets_hz, j_hz=0.0, t2_s=None):
        offsets = jnp.asarray(offsets_hz)
        for name, value in (("offsets_hz", offsets), ("j_hz", j_hz), ("t2_s", t2_s)):
            if value is not None and jnp.iscomplexobj(value):
                raise ValueError(
                    f"Argument `{name}` must be real (Hz or seconds), but is complex. Pass "
                    "the real part, `np.real(...)`, if the imaginary part is zero."
                )
        if not jnp.issubdtype(offsets.dtype, jnp.floating):
            offsets = offsets.astype(jnp.result_type(float))
        if offsets.ndim != 1 or offsets.shape[0] == 0:
            raise ValueError(
                "Argument `offsets_hz` must be a 1-D array of the N >= 1 offsets in Hz, "
                f"but has shape {tuple(offsets.shape)}. To simulate a batch of chains, "
                "build each chain inside `jax.vmap`."
            )
        n = offsets.shape[0]
        j = jnp.asarray(j_hz, dtype=offsets.dtype)
        if j.ndim > 1 or (j.ndim == 1 and j.shape[0] != n - 1):
            raise ValueError(
                f"Argument `j_hz` must be a scalar or an array of the N - 1 = {n - 1} bond "
                f"couplings of a chain of {n} spins, but has shape {tuple(j.shape)}."
            )
        check_finite("offsets_hz", offsets)
        check_finite("j_hz", j)
        if t2_s is not None:
            t2 = jnp.asarray(t2_s, dtype=offsets.dtype)
            if t2.ndim != 0:
                raise ValueError(
                    f"Argument `t2_s` must be a scalar (seconds) or None, but has shape "
                    f"{tuple(t2.shape)}."
                )
            if is_concrete(t2):
                check_positive("t2_s", t2)
            t2_s = t2
        self.offsets_hz = offsets
        self.j_hz = j
        self.t2_s = t2_s

    @property
    def n_spins(self) -> int:
        return self.offsets_hz.shape[-1]

    @property
    def bond_j_hz(self) -> Float[Array, " bonds"]:
        """The coupling of every bond, shape `(N - 1,)`."""
        return jnp.broadcast_to(self.j_hz, (*self.offsets_hz.shape[:-1], self.n_spins - 1))

    def reversed(self) -> "SpinChain":
        """The same chain read from the other end (offsets and bonds reversed)."""
        j = self.j_hz if self.j_hz.ndim == 0 else self.j_hz[::-1]
        return SpinChain(self.offsets_hz[::-1], j, self.t2_s)

    def theta(self) -> Float[Array, " p"]:
        r"""The flat parameter vector $\theta = (\nu_1 \dots \nu_N, J)$ (or per-bond $J$)."""
        return jnp.concatenate([self.offsets_hz, jnp.atleast_1d(self.j_hz)])

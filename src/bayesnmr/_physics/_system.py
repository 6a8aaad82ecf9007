"""Spin systems: a 1D chain of coupled spins-1/2, and any network of couplings."""

import functools

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._checks import check_finite, check_positive, is_concrete


def _offsets_and_t2(offsets_hz, j_hz, t2_s, batch_hint: str = ""):
    """The checked offsets (a floating 1-D array) and T2 (a scalar array or None)."""
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
            f"but has shape {tuple(offsets.shape)}.{batch_hint}"
        )
    check_finite("offsets_hz", offsets)
    if t2_s is None:
        return offsets, None
    t2 = jnp.asarray(t2_s, dtype=offsets.dtype)
    if t2.ndim != 0:
        raise ValueError(
            f"Argument `t2_s` must be a scalar (seconds) or None, but has shape {tuple(t2.shape)}."
        )
    if is_concrete(t2):
        check_positive("t2_s", t2)
    return offsets, t2


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
        hint = " To simulate a batch of chains, build each chain inside `jax.vmap`."
        offsets, t2_s = _offsets_and_t2(offsets_hz, j_hz, t2_s, hint)
        n = offsets.shape[0]
        j = jnp.asarray(j_hz, dtype=offsets.dtype)
        if j.ndim > 1 or (j.ndim == 1 and j.shape[0] != n - 1):
            raise ValueError(
                f"Argument `j_hz` must be a scalar or an array of the N - 1 = {n - 1} bond "
                f"couplings of a chain of {n} spins, but has shape {tuple(j.shape)}."
            )
        check_finite("j_hz", j)
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

    # The coupling structure every solver reads (shared with `SpinSystem`).
    @property
    def pairs(self) -> tuple[tuple[int, int], ...]:
        """The coupled pairs `(i, j)`, counted from 0: the bonds `(i, i + 1)`."""
        return chain_pairs(self.n_spins)

    @property
    def pair_j_hz(self) -> Float[Array, " pairs"]:
        """The coupling of every pair in `pairs`, in Hz."""
        return self.bond_j_hz

    @property
    def iz_index(self) -> int:
        """The spin (counted from 0) whose polarisation `iz1` follows: spin 1."""
        return 0

    def coupling_matrix(self) -> Float[Array, "n n"]:
        """The symmetric `(N, N)` matrix of couplings in Hz, zero off the bonds."""
        return coupling_matrix(self.n_spins, self.pairs, self.pair_j_hz)


@functools.cache
def chain_pairs(n_spins: int) -> tuple[tuple[int, int], ...]:
    return tuple((i, i + 1) for i in range(n_spins - 1))


@functools.cache
def all_pairs(n_spins: int) -> tuple[tuple[int, int], ...]:
    return tuple((i, j) for i in range(n_spins) for j in range(i + 1, n_spins))


def coupling_matrix(n: int, pairs, pair_j):
    m = jnp.zeros((n, n), dtype=pair_j.dtype)
    if not pairs:
        return m
    i, j = (np.array(x) for x in zip(*pairs, strict=True))
    return m.at[i, j].set(pair_j).at[j, i].set(pair_j)


class SpinSystem(eqx.Module):
    r"""$N$ spins-1/2 with any network of isotropic couplings.

    $$H = \sum_{i=1}^N 2\pi\nu_i I_{iz} + \sum_{i<j} 2\pi J_{ij}\,
    \mathbf{I}_i\cdot\mathbf{I}_j$$

    Simulated by the same `bn.simulate(system, grid, solver=...)` as a `SpinChain`
    (the exact, Diffrax and typicality solvers; the shipped surrogates are chain-only).

    **Arguments:**

    - `offsets_hz`: the offsets $\nu_i$ in Hz, shape `(N,)`. To give shifts in ppm at
      a spectrometer frequency, use `SpinSystem.from_ppm`.
    - `j_hz`: the couplings in Hz, a symmetric `(N, N)` matrix with a zero diagonal
      ($J_{ij} = J_{ji}$; a zero entry is an uncoupled pair).
    - `t2_s`: the phenomenological $T_2$ in seconds, or `None` (as for `SpinChain`).
    - `iz_spin`: the spin $k$ (counted from 1, as in the conventions) whose local
      polarisation the `iz1` trace follows: $\rho(0) = I_{kz}$. Default 1.
    - `names`: optional names of the spins (for plots, files and errors).

    Every pair $i < j$ enters the Hamiltonian (an uncoupled pair with weight 0), so a
    gradient with respect to a zero coupling is exact, and the structure, hence the
    compiled code, depends on $N$ only.
    """

    offsets_hz: Float[Array, " n"]
    j_hz: Float[Array, "n n"]
    t2_s: Float[Array, ""] | None = None
    iz_spin: int = eqx.field(static=True, default=1)
    names: tuple[str, ...] | None = eqx.field(static=True, default=None)

    def __init__(self, offsets_hz, j_hz, t2_s=None, *, iz_spin=1, names=None):
        offsets, t2_s = _offsets_and_t2(offsets_hz, j_hz, t2_s)
        n = offsets.shape[0]
        j = jnp.asarray(j_hz, dtype=offsets.dtype)
        if j.shape != (n, n):
            raise ValueError(
                f"Argument `j_hz` must be the symmetric ({n}, {n}) matrix of couplings in Hz "
                f"of the {n} spins (zero diagonal, J[i, k] = J[k, i]), but has shape "
                f"{tuple(j.shape)}. For a chain with nearest-neighbour couplings use "
                "`bn.SpinChain(offsets_hz, j_hz)`."
            )
        check_finite("j_hz", j)
        if is_concrete(j):
            a = np.asarray(j)
            if np.any(np.diag(a) != 0):
                raise ValueError(
                    "Argument `j_hz` must have a zero diagonal (a spin is not coupled to "
                    f"itself), but has {np.diag(a).tolist()} on it. Set the diagonal to 0."
                )
            bad = np.argwhere(~np.isclose(a, a.T, rtol=1e-12, atol=0.0))
            if bad.size:
                i, k = bad[0]
                raise ValueError(
                    f"Argument `j_hz` must be symmetric, but J[{i}, {k}] = {a[i, k]:g} and "
                    f"J[{k}, {i}] = {a[k, i]:g} Hz differ. Give each coupling once in both "
                    "places, for example `j = np.triu(j) + np.triu(j, 1).T`."
                )
        if (
            isinstance(iz_spin, bool)
            or not isinstance(iz_spin, int | np.integer)
            or not (1 <= iz_spin <= n)
        ):
            raise ValueError(
                f"Argument `iz_spin` must be a spin number from 1 to {n} (counted from 1, "
                f"as in the conventions), but is {iz_spin!r}."
            )
        if names is not None:
            names = tuple(str(x) for x in names)
            if len(names) != n or len(set(names)) != n:
                raise ValueError(
                    f"Argument `names` must give {n} distinct names, one per spin, but is "
                    f"{list(names)}."
                )
        self.offsets_hz = offsets
        self.j_hz = j
        self.t2_s = t2_s
        self.iz_spin = int(iz_spin)
        self.names = names

    @classmethod
    def from_chain(cls, chain: SpinChain, *, iz_spin: int = 1) -> "SpinSystem":
        """The same spins and couplings as a `SpinSystem` (for a chain's coupling matrix)."""
        return cls(chain.offsets_hz, chain.coupling_matrix(), chain.t2_s, iz_spin=iz_spin)

    @classmethod
    def from_ppm(
        cls,
        shifts_ppm,
        j_hz,
        spectrometer_mhz: float,
        carrier_ppm: float | None = None,
        t2_s=None,
        **kwargs,
    ) -> "SpinSystem":
        r"""A system from chemical shifts $\delta_i$ in ppm at a spectrometer frequency
        $f_0$ in MHz: $\nu_i = (\delta_i - \delta_c) f_0$ Hz, relative to the carrier
        $\delta_c$ (`carrier_ppm`; default the centre of the shifts, where a
        spectroscopist would put it). `offsets_to_ppm` converts back."""
        shifts = np.asarray(shifts_ppm, dtype=np.float64)
        if shifts.ndim != 1 or shifts.size == 0:
            raise ValueError(
                f"Argument `shifts_ppm` must be a 1-D array of the N >= 1 shifts in ppm, but "
                f"has shape {shifts.shape}."
            )
        check_finite("shifts_ppm", shifts)
        check_positive("spectrometer_mhz", spectrometer_mhz)
        if carrier_ppm is None:
            carrier_ppm = 0.5 * (shifts.max() + shifts.min())
        check_finite("carrier_ppm", carrier_ppm)
        offsets = (shifts - float(carrier_ppm)) * float(spectrometer_mhz)
        return cls(offsets, j_hz, t2_s, **kwargs)

    @property
    def n_spins(self) -> int:
        return self.offsets_hz.shape[-1]

    @property
    def pairs(self) -> tuple[tuple[int, int], ...]:
        """Every pair `(i, j)`, `i < j`, counted from 0."""
        return all_pairs(self.n_spins)

    @property
    def pair_j_hz(self) -> Float[Array, " pairs"]:
        """The coupling of every pair in `pairs`, in Hz: $(J_{ij} + J_{ji}) / 2$, so a
        gradient with respect to `j_hz` is a symmetric matrix (each entry half the
        derivative by the pair's coupling)."""
        i, j = np.triu_indices(self.n_spins, 1)
        return 0.5 * (self.j_hz[..., i, j] + self.j_hz[..., j, i])

    @property
    def iz_index(self) -> int:
        return self.iz_spin - 1

    def coupling_matrix(self) -> Float[Array, "n n"]:
        return self.j_hz


#: Anything `simulate` takes: a chain, or any network of couplings.
System = SpinChain | SpinSystem


def offsets_to_ppm(offsets_hz, spectrometer_mhz: float, carrier_ppm: float):
    r"""Offsets in Hz back to shifts in ppm: $\delta_i = \delta_c + \nu_i / f_0$."""
    return carrier_ppm + np.asarray(offsets_hz) / float(spectrometer_mhz)

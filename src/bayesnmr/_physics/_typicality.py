r"""Quantum typicality: the traces of large chains from a few random state vectors."""

import dataclasses
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.special

from .._checks import is_concrete
from ._grid import TimeGrid
from ._sectors import fid_norm, iz1_norm
from ._solver import AbstractSolver
from ._system import SpinSystem, System
from ._traces import Traces

# Chebyshev vectors made per step of the recurrence's scan, then folded into the window's
# accumulators by one matrix product: the accumulators are read and written once per
# chunk (N = 16: 8 -> 16 took a call from 15.2 to 13.3 s).
CHUNK = 16


def _bits(n_spins: int) -> jnp.ndarray:
    states = jnp.arange(2**n_spins, dtype=jnp.int32)
    return (states[None, :] >> jnp.arange(n_spins, dtype=jnp.int32)[:, None]) & 1


def _diagonal(offsets_rad, j_rad, bits, pairs):
    z = 0.5 - bits.astype(offsets_rad.dtype)
    d = offsets_rad @ z
    for p, (i, k) in enumerate(pairs):
        d = d + j_rad[p] * (z[i] * z[k])
    return d


def chebyshev_order(x: float, tol: float = 1e-14) -> int:
    """The smallest order $K$ with $|J_k(x)| < $ `tol` for every $k > K$."""
    k = np.arange(int(x) + 200)
    big = np.flatnonzero(np.abs(scipy.special.jv(k, x)) >= tol)
    return int(big[-1]) + 1 if big.size else 1


def _lift(x, v):
    """`x` of shape `(dim,)` with leading unit axes to broadcast against `v`."""
    return x.reshape((1,) * (v.ndim - 1) + x.shape)


def _view(n_spins: int, spins: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A shape for the basis index with one axis of 2 per spin in `spins` (bit i is the
    i-th least significant) and the bits between them merged, and those axes in the
    order of `spins`."""
    shape, axis_of, run = [], {}, 1
    for b in range(n_spins - 1, -1, -1):
        if b in spins:
            if run > 1:
                shape.append(run)
                run = 1
            axis_of[b] = len(shape)
            shape.append(2)
        else:
            run *= 2
    if run > 1:
        shape.append(run)
    return tuple(shape), tuple(axis_of[b] for b in spins)


def _flip(v, n_spins: int, spins: tuple[int, ...], weight=None):
    """`weight[bits of s at spins] * v[..., s ^ mask]` for the basis index s, with `mask`
    the bits of `spins` and `weight` of shape `(2,) * len(spins)` (1 if None).

    Done as reversals of axes of `v` viewed with one axis per flipped spin and the bits
    between them merged (a strided copy, faster than a gather on a CPU; few axes keep the
    index arithmetic cheap), and the weight a small array broadcast along the others, so
    no mask of the full dimension is read.
    """
    lead = v.shape[:-1]
    shape, axes = _view(n_spins, spins)
    axes = tuple(len(lead) + a for a in axes)
    out = jnp.flip(v.reshape(lead + shape), axes)
    if weight is not None:
        rank = tuple(int(r) for r in np.argsort(np.argsort(axes)))  # weight axis -> view order
        w = jnp.moveaxis(jnp.asarray(weight), tuple(range(len(axes))), rank)
        full = [1] * out.ndim
        for a in axes:
            full[a] = 2
        out = out * w.reshape(full)
    return out.reshape(v.shape)


def gershgorin_radius(chain: System) -> float:
    r"""A bound on $\max|E|$ of $H - 2\pi\bar\nu F_z$ (rad/s), from Gershgorin's discs."""
    nu = np.asarray(chain.offsets_hz, np.float64)
    j = np.asarray(chain.pair_j_hz, np.float64)
    bits = np.asarray(_bits(nu.size))
    z = 0.5 - bits
    diag = 2 * np.pi * ((nu - nu.mean()) @ z)
    off = np.zeros_like(diag)
    for p, (i, k) in enumerate(chain.pairs):
        diag += 2 * np.pi * j[p] * z[i] * z[k]
        off += np.pi * abs(j[p]) * (bits[i] != bits[k])
    return float(np.max(np.abs(diag) + off))


class TypicalitySolver(AbstractSolver):
    r"""Stochastic traces of long chains by quantum typicality, with standard errors.

    A trace over the $2^N$-dimensional space is estimated with random vectors
    $\psi$ (complex Gaussian, $E[\psi\psi^\dagger] = 1$):

    $$\mathrm{Tr}[F_+ U F_- U^\dagger] \approx \langle a(t)|F_-|b(t)\rangle,\quad
    a = e^{iHt}F_-\psi,\ b = e^{iHt}\psi,$$

    and likewise $\mathrm{Tr}[I_{1z} U I_{1z} U^\dagger] \approx
    \langle c(t)|I_{1z}|b(t)\rangle$ with $c = e^{iHt} I_{1z}\psi$. The relative error
    falls as $1/\sqrt{R\,2^N}$ for $R$ vectors, so long chains need few.

    **Propagation.** $H$ commutes with $F_z$, so the mean offset is removed,
    $H' = H - 2\pi\bar\nu F_z$, and its phase $e^{i2\pi\bar\nu t}$ put back on the FID: a
    large common offset costs nothing. Each time step applies $e^{iH'\Delta t}$ as a
    Chebyshev expansion, $\sum_k (2 - \delta_{k0})\, i^k J_k(r\tau)\,
    T_k(H'/r)$, with $r$ a Gershgorin bound on the spectrum and the order chosen so the
    dropped terms are below $10^{-14}$. One recurrence serves a window of `window` output
    times (each $\tau$ has its own coefficients), so a window of 10 steps costs about
    $r\,10\Delta t + 20$ products with $H'$ instead of ten times $r\Delta t + 15$.
    $H'$ is applied matrix-free: a diagonal, and one permutation per coupled pair
    $(i, j)$ for the flip-flop terms ($s \mapsto s \oplus (2^i + 2^j)$ on the basis
    index, done as axis reversals; a `SpinSystem` has all $N(N-1)/2$ pairs, a chain its
    $N - 1$ bonds), so memory stays a few vectors of $2^N$ and the same code runs on a GPU.

    **Normalisation.** Each trace is a ratio: the same vectors' estimate of the
    normalising trace ($\mathrm{Tr}[F_+F_-]$, $\mathrm{Tr}[I_{1z}^2]$) divides it, so
    $M_+(0) = i_{z1}(0) = 1$ exactly and fluctuations of the vectors' norms cancel.

    **Errors.** With $R \ge 4$ vectors the standard errors come from the spread over
    the vectors (the delta method for a ratio), divided by $\sqrt R$. With fewer, from
    the variance of the Gaussian estimator, $\mathrm{Tr}[XX^\dagger]$, estimated by
    $\|F_+ a\|^2$ for the FID (shared equally between `mx` and `my`), and the bound
    $1/\sqrt{R\,2^N}$ for `iz1`: both ignore the cancellation of the ratio, so they
    are conservative.

    **Arguments:**

    - `n_vectors`: the number $R$ of random vectors; `None` (default) picks
      $\max(1, 2^{17 - N})$, which keeps the cost about constant up to $N = 17$.
    - `seed`: the random seed; the same seed gives the same result.
    - `window`: output times per Chebyshev recurrence; `None` (default) picks 10, and 20
      from 18 spins, where the products with $H'$ outweigh the larger window's
      accumulators (measured on 2 cores: N = 18 28.6 -> 24.5 s, N = 20 143 -> 125 s;
      N = 16 12.8 -> 13.9 s, so 10 below).
    - `spectral_radius_hz`: the bound $r / 2\pi$ in Hz (an upper bound on the
      Hamiltonian's eigenvalues $|E|/2\pi$, such as
      $\sum_i |\nu_i - \bar\nu| / 2 + 1.5 \sum |J|$). `None` computes it from the
      chain, which needs concrete (not traced) parameters; pass it to use the solver
      under `jax.jit` or `jax.vmap`.
    - `pairs`: the coupled pairs to apply (leave it `None`): `simulate` sets it, for a
      `SpinSystem` with concrete values, to the pairs whose coupling is not zero, so a
      sparse network costs what its couplings cost. Traced values (under `jax.grad`,
      say) keep every pair: a gradient by a zero coupling stays exact.
    """

    n_vectors: int | None = eqx.field(static=True)
    seed: jnp.ndarray  # an array leaf, so a new seed does not recompile
    spectral_radius_hz: float | None = eqx.field(static=True)
    check_values: ClassVar[bool] = False
    window: int | None = eqx.field(static=True)
    pairs: tuple | None = eqx.field(static=True)

    def __init__(
        self,
        n_vectors: int | None = None,
        seed: int = 0,
        spectral_radius_hz: float | None = None,
        window: int | None = None,
        pairs: tuple | None = None,
    ):
        if n_vectors is not None and (
            isinstance(n_vectors, bool) or not isinstance(n_vectors, int) or n_vectors < 1
        ):
            raise ValueError(
                f"Argument `n_vectors` must be a positive int or None, got {n_vectors!r}."
            )
        seed_arr = np.asarray(seed)
        if (
            isinstance(seed, bool)
            or seed_arr.ndim != 0
            or not np.issubdtype(seed_arr.dtype, np.integer)
            or seed_arr < 0
        ):
            raise ValueError(f"Argument `seed` must be a non-negative int, got {seed!r}.")
        if spectral_radius_hz is not None and not spectral_radius_hz > 0:
            raise ValueError(
                f"Argument `spectral_radius_hz` must be positive (Hz), got {spectral_radius_hz!r}."
            )
        if window is not None and (
            isinstance(window, bool) or not isinstance(window, int) or window < 1
        ):
            raise ValueError(f"Argument `window` must be a positive int or None, got {window!r}.")
        self.n_vectors = n_vectors
        self.seed = np.asarray(seed, dtype=np.uint32)
        self.spectral_radius_hz = None if spectral_radius_hz is None else float(spectral_radius_hz)
        self.window = window
        if pairs is not None:
            try:
                pairs = tuple((int(i), int(k)) for i, k in pairs)
            except (TypeError, ValueError):
                raise ValueError(
                    f"Argument `pairs` must be None or pairs (i, j) of spins, got {pairs!r}."
                ) from None
        self.pairs = pairs

    def vectors_for(self, n_spins: int) -> int:
        return self.n_vectors or max(1, 2 ** max(0, 17 - n_spins))

    def prepare(self, chain: System, grid: TimeGrid) -> "TypicalitySolver":
        concrete = is_concrete(chain.offsets_hz) and is_concrete(chain.j_hz)
        out = self
        if concrete and isinstance(chain, SpinSystem):  # skip the uncoupled pairs
            j = np.asarray(chain.pair_j_hz)
            out = dataclasses.replace(
                out, pairs=tuple(p for p, x in zip(chain.pairs, j, strict=True) if x != 0)
            )
        if out.spectral_radius_hz is not None:
            return out
        if not concrete:
            raise ValueError(
                "TypicalitySolver needs `spectral_radius_hz` when the chain's parameters "
                "are traced (under jax.jit or jax.vmap); pass an upper bound on |E|/2pi in "
                "Hz such as sum|nu_i - mean nu| / 2 + 1.5 * sum|J|."
            )
        # Rounded up to a grid of ratio 2^(1/4): chains of similar spread then share
        # one compilation, for about 10% more Chebyshev terms on average.
        bound = 1.02 * gershgorin_radius(chain) + 1e-6
        radius = 2.0 ** (np.ceil(4 * np.log2(bound)) / 4)
        return dataclasses.replace(out, spectral_radius_hz=float(radius) / (2 * np.pi))

    def observables(self, chain: System, grid: TimeGrid) -> Traces:
        n = chain.n_spins
        dim = 2**n
        dtype = chain.offsets_hz.dtype
        cdtype = jnp.result_type(dtype, jnp.complex64)
        r_vec = self.vectors_for(n)
        radius = 2 * np.pi * float(self.spectral_radius_hz)  # rad/s
        window = max(1, min(self.window or (20 if n >= 18 else 10), grid.n - 1))
        taus = np.arange(1, window + 1) * grid.dt
        order = chebyshev_order(radius * taus[-1])

        bits = _bits(n)
        nu = chain.offsets_hz
        mean_nu = jnp.mean(nu)
        pairs, pair_j = chain.pairs, chain.pair_j_hz
        if self.pairs is not None:  # the coupled pairs only (set by `prepare`)
            index = np.array([pairs.index(p) for p in self.pairs], dtype=int)
            pairs, pair_j = self.pairs, pair_j[index]
        diag = _diagonal(2 * jnp.pi * (nu - mean_nu), 2 * jnp.pi * pair_j, bits, pairs) / radius
        swap = jnp.asarray([[0.0, 1.0], [1.0, 0.0]], dtype)  # the flip-flop: bits that differ
        hop = [jnp.pi * pair_j[p] / radius * swap for p in range(len(pairs))]

        def h_scaled(v):  # (H'/r) v for a batch of vectors (..., dim)
            out = _lift(diag, v) * v
            for p, pair in enumerate(pairs):
                out = out + _flip(v, n, pair, hop[p])
            return out

        # The order + 1 terms in equal chunks of at most CHUNK (few padded terms).
        n_chunks = -(-(order + 1) // CHUNK)
        chunk = -(-(order + 1) // n_chunks)
        k = np.arange(n_chunks * chunk)
        coef = scipy.special.jv(k[:, None], radius * taus[None, :]) * (1j**k)[:, None]
        coef[1:] *= 2.0
        coef = jnp.asarray(coef.reshape(n_chunks, chunk, window), dtype=cdtype)

        def propagate(v):
            """The states at the `window` times after `v`, all from one recurrence.

            The Chebyshev vectors are made `chunk` at a time and folded into the
            `window` accumulators with one matrix product per chunk.
            """

            def body(carry, coef_c):
                prev, cur, acc = carry
                made = []
                for _ in range(chunk):
                    made.append(cur)
                    prev, cur = cur, 2.0 * h_scaled(cur) - prev
                acc = acc + jnp.tensordot(coef_c, jnp.stack(made), axes=(0, 0))
                return (prev, cur, acc), None

            # Starting from (T_-1, T_0) = (T_1, v) makes the recurrence give T_1 = H'v/r.
            acc0 = jnp.zeros((window,) + v.shape, cdtype)
            return jax.lax.scan(body, (h_scaled(v), v, acc0), coef)[0][2]

        down, up = jnp.asarray([0.0, 1.0], dtype), jnp.asarray([1.0, 0.0], dtype)  # bit 1: down

        def lower(v):  # F_- v
            return sum(_flip(v, n, (i,), down) for i in range(n))

        def raise_(v):  # F_+ v
            return sum(_flip(v, n, (i,), up) for i in range(n))

        z1 = (0.5 - bits[chain.iz_index]).astype(dtype)

        def measure(state):
            b, a, c = state
            up = raise_(a)  # <a|F_-|b> = <F_+ a|b>: one application serves both sums
            fid = jnp.sum(jnp.conj(up) * b, axis=-1)
            var_fid = jnp.sum(jnp.abs(up) ** 2, axis=-1)
            iz = jnp.real(jnp.sum(jnp.conj(c) * _lift(z1, b) * b, axis=-1))
            return fid, var_fid, iz

        key = jax.random.PRNGKey(jnp.asarray(self.seed))
        kr, ki = jax.random.split(key)
        shape = (r_vec, dim)
        psi = (
            jax.random.normal(kr, shape, dtype) + 1j * jax.random.normal(ki, shape, dtype)
        ).astype(cdtype) / jnp.sqrt(2.0)
        state0 = jnp.stack([psi, lower(psi), _lift(z1, psi) * psi])

        def scan_step(state, _):
            states = propagate(state)
            return states[-1], jax.vmap(measure)(states)

        n_windows = -(-(grid.n - 1) // window)
        _, out = jax.lax.scan(scan_step, state0, None, length=n_windows)
        first = measure(state0)
        fid, var_fid, iz = (
            jnp.concatenate([f[None], o.reshape((-1,) + o.shape[2:])[: grid.n - 1]])
            for f, o in zip(first, out, strict=True)
        )

        # Ratio estimators: divide by the same vectors' estimate of the normalising trace
        # (Tr[F_+ F_-] and Tr[I_1z^2]), so M+(0) = iz1(0) = 1 exactly and the errors that
        # the vectors' norms share with the signal cancel.
        u_fid = fid / fid_norm(n)
        v_fid = u_fid[0].real  # (R,), mean 1
        u_iz = iz / iz1_norm(n)
        v_iz = u_iz[0]
        t = jnp.asarray(grid.times, dtype)
        phase = jnp.exp(1j * 2 * jnp.pi * mean_nu * t)
        m_plus = phase * jnp.mean(u_fid, axis=1) / jnp.mean(v_fid)
        iz1 = jnp.mean(u_iz, axis=1) / jnp.mean(v_iz)
        if r_vec >= 4:
            # Delta method: the spread of u_r - estimate * v_r over the vectors.
            res_fid = phase[:, None] * (u_fid - (m_plus / phase)[:, None] * v_fid[None, :])
            res_iz = u_iz - iz1[:, None] * v_iz[None, :]
            mx_err = jnp.std(res_fid.real, axis=1, ddof=1) / np.sqrt(r_vec)
            my_err = jnp.std(res_fid.imag, axis=1, ddof=1) / np.sqrt(r_vec)
            iz_err = jnp.std(res_iz, axis=1, ddof=1) / np.sqrt(r_vec)
        else:
            scale = np.sqrt(2 * r_vec) * fid_norm(n)
            mx_err = my_err = jnp.sqrt(jnp.mean(var_fid, axis=1)) / scale
            iz_err = jnp.full_like(iz1, 1.0 / np.sqrt(dim * r_vec))
        return Traces(
            mx=m_plus.real,
            my=m_plus.imag,
            iz1=iz1,
            grid=grid,
            mx_err=mx_err,
            my_err=my_err,
            iz1_err=iz_err,
        )

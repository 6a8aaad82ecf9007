"""Basis bookkeeping for the sectors of fixed total $F_z$.

A basis state of $N$ spins is an integer whose bit $i$ is 1 when spin $i$ (counted from
0) points down. Sector $k$ holds the $\binom{N}{k}$ states with $k$ spins down, so its
magnetisation is $N/2 - k$. Everything here is NumPy, computed once per $N$ and cached:
the structure of a chain depends on $N$ only, and the parameters enter later as weights.
"""

import functools

import jax.numpy as jnp
import numpy as np

from ._system import chain_pairs


class Sector:
    """Index tables for one sector of fixed $F_z$ (plain NumPy, built once per $N$).

    Attributes:
        states: the basis states (bit patterns) of the sector, ascending.
        z: shape `(N, d)`, the eigenvalue of $I_{iz}$ ($\\pm 1/2$) on each state.
        pairs: the coupled pairs `(i, j)` (default: a chain's bonds `(i, i + 1)`).
        zz: shape `(pairs, d)`, $z_i z_j$ of every pair on each state.
        flip_rows, flip_cols, flip_bond: the off-diagonal flip-flop entries of the
            coupling terms: state `flip_rows[m]` and state `flip_cols[m]` differ by an
            exchange of the spins of pair `flip_bond[m]`. Both orderings are listed.
    """

    def __init__(self, n_spins: int, k: int, pairs: tuple[tuple[int, int], ...] | None = None):
        self.n_spins = n_spins
        self.k = k
        self.pairs = chain_pairs(n_spins) if pairs is None else pairs
        states = np.array(
            [s for s in range(2**n_spins) if s.bit_count() == k], dtype=np.int64
        ).reshape(-1)
        self.states = states
        bits = (states[None, :] >> np.arange(n_spins)[:, None]) & 1
        self.z = 0.5 - bits.astype(np.float64)
        index = {int(s): m for m, s in enumerate(states)}
        # z_i z_j of every pair on every state: the diagonal of the couplings.
        self.zz = np.array([self.z[i] * self.z[j] for i, j in self.pairs]).reshape(
            len(self.pairs), len(states)
        )
        rows, cols, bonds = [], [], []
        for b, (i, j) in enumerate(self.pairs):
            m = np.flatnonzero(bits[i] != bits[j])
            rows.append(m)
            cols.append(np.searchsorted(states, states[m] ^ ((1 << i) | (1 << j))))
            bonds.append(np.full(m.size, b))
        rows, cols, bonds = (np.concatenate(x) if x else np.zeros(0) for x in (rows, cols, bonds))
        self.flip_rows = np.asarray(rows, dtype=np.int32)
        self.flip_cols = np.asarray(cols, dtype=np.int32)
        self.flip_bond = np.asarray(bonds, dtype=np.int32)
        self._index = index

    @property
    def dim(self) -> int:
        return len(self.states)

    def index_of(self, states: np.ndarray) -> np.ndarray:
        return np.array([self._index[int(s)] for s in states], dtype=np.int64)


def sectors(n_spins: int, pairs: tuple[tuple[int, int], ...] | None = None) -> tuple[Sector, ...]:
    """The $N + 1$ sectors of $N$ spins coupled on `pairs` (default: a chain's bonds), by
    number of spins down. Only the coupling tables depend on `pairs`."""
    return _sectors(n_spins, chain_pairs(n_spins) if pairs is None else tuple(pairs))


@functools.cache
def _sectors(n_spins: int, pairs: tuple[tuple[int, int], ...]) -> tuple[Sector, ...]:
    return tuple(Sector(n_spins, k, pairs) for k in range(n_spins + 1))


@functools.cache
def raising_index(n_spins: int, k: int) -> np.ndarray:
    """$F_+$ from sector $k + 1$ to sector $k$ as a gather table.

    Row $m$ lists, for the state $m$ of sector $k$, the $N - k$ states of sector $k + 1$
    that $F_+$ maps onto it (each with matrix element 1), so
    `(F_+ V)[m] = V[table[m]].sum(0)`. Shape `(d_k, N - k)`.
    """
    lo, hi = sectors(n_spins)[k], sectors(n_spins)[k + 1]
    ups = [[i for i in range(n_spins) if not (int(s) >> i) & 1] for s in lo.states]
    table = np.array(
        [
            hi.index_of(np.array([int(s) | (1 << i) for i in up]))
            for s, up in zip(lo.states, ups, strict=True)
        ],
        dtype=np.int32,
    )
    return table.reshape(lo.dim, n_spins - k)


def sector_hamiltonian(offsets_hz, pair_j_hz, k: int, xp=jnp, pairs=None):
    r"""The block of $H$ (rad/s) with `k` spins down, dense `(d_k, d_k)`, for couplings
    `pair_j_hz` on `pairs` (default: a chain's bonds): with `xp=jnp` a JAX array
    (traceable), with `xp=np` a NumPy one (the eager path of long chains)."""
    n = len(offsets_hz)
    sec = sectors(n, pairs)[k]
    z = xp.asarray(sec.z, dtype=offsets_hz.dtype)
    diag = 2 * np.pi * (offsets_hz @ z)
    if len(sec.pairs):
        diag = diag + 2 * np.pi * (pair_j_hz @ xp.asarray(sec.zz, dtype=offsets_hz.dtype))
    h = xp.diag(diag)
    if sec.flip_rows.size:
        flips = np.pi * pair_j_hz[sec.flip_bond]
        if xp is np:
            np.add.at(h, (sec.flip_rows, sec.flip_cols), flips)
        else:
            h = h.at[sec.flip_rows, sec.flip_cols].add(flips)
    return h


def fid_norm(n_spins: int) -> float:
    r"""$\mathrm{Tr}[F_+ F_-]$ over the spectral sums' convention: the FID's normaliser."""
    return n_spins * 2.0 ** (n_spins - 1)


def iz1_norm(n_spins: int) -> float:
    r"""$\mathrm{Tr}[I_{1z}^2] = 2^N / 4$: the local polarisation's normaliser."""
    return 2.0**n_spins / 4.0


@functools.cache
def lowering_index(n_spins: int, k: int) -> np.ndarray:
    r"""$F_+^\top$ from sector $k$ to sector $k + 1$ as a gather table: row $r$ lists, for
    the state $r$ of sector $k + 1$, the $k + 1$ states of sector $k$ that $F_+$ maps onto
    it (one of its down spins raised). Shape `(d_{k+1}, k + 1)`."""
    lo, hi = sectors(n_spins)[k], sectors(n_spins)[k + 1]
    table = [
        lo.index_of(np.array([int(s) & ~(1 << i) for i in range(n_spins) if (int(s) >> i) & 1]))
        for s in hi.states
    ]
    return np.array(table, dtype=np.int32).reshape(hi.dim, k + 1)


def raising_amplitudes(n_spins: int, k: int):
    r"""$A = V_k^\top F_+ V_{k+1}$ for the FID between sectors $k$ and $k + 1$.

    Contracted over the smaller sector: $V_k^\top (F_+ V_{k+1})$, with $F_+ V_{k+1}$
    gathered from the rows of $V_{k+1}$, costs $d_k^2 d_{k+1}$; $(F_+^\top V_k)^\top
    V_{k+1}$ costs $d_k d_{k+1}^2$, less in the upper half of the sectors ($k \ge N/2$,
    where $d_{k+1} < d_k$)."""
    d_p, d_q = (len(s.states) for s in sectors(n_spins)[k : k + 2])

    def gather_sum(v, table):
        out = v[table[:, 0]]
        for c in range(1, table.shape[1]):
            out = out + v[table[:, c]]
        return out

    if d_q < d_p:
        table = lowering_index(n_spins, k)
        return lambda vp, vq: gather_sum(vp, table).T @ vq
    table = raising_index(n_spins, k)
    return lambda vp, vq: vp.T @ gather_sum(vq, table)


def iz1_amplitudes(z1: np.ndarray):
    r"""$B = V^\top I_{1z} V = V_\uparrow^\top V_\uparrow - \tfrac12$, since $V^\top V = 1$.

    Only the rows with spin 1 up enter, which halves the cost of the product.
    """
    up = np.flatnonzero(z1 > 0)

    def amplitudes(vp, vq):
        v_up = vp[up]
        xp = np if isinstance(vp, np.ndarray) else jnp  # NumPy in, NumPy out
        return v_up.T @ v_up - 0.5 * xp.eye(vp.shape[1], dtype=vp.dtype)

    return amplitudes

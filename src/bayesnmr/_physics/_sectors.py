"""Basis bookkeeping for the sectors of fixed total $F_z$.

A basis state of $N$ spins is an integer whose bit $i$ is 1 when spin $i$ (counted from
0) points down. Sector $k$ holds the $\binom{N}{k}$ states with $k$ spins down, so its
magnetisation is $N/2 - k$. Everything here is NumPy, computed once per $N$ and cached:
the structure of a chain depends on $N$ only, and the parameters enter later as weights.
"""

import functools

import numpy as np


class Sector:
    """Index tables for one sector of fixed $F_z$ (plain NumPy, built once per $N$).

    Attributes:
        states: the basis states (bit patterns) of the sector, ascending.
        z: shape `(N, d)`, the eigenvalue of $I_{iz}$ ($\\pm 1/2$) on each state.
        flip_rows, flip_cols, flip_bond: the off-diagonal flip-flop entries of the
            bond terms: state `flip_rows[m]` and state `flip_cols[m]` differ by an
            exchange across bond `flip_bond[m]`. Both orderings are listed.
    """

    def __init__(self, n_spins: int, k: int):
        self.n_spins = n_spins
        self.k = k
        states = np.array(
            [s for s in range(2**n_spins) if s.bit_count() == k], dtype=np.int64
        ).reshape(-1)
        self.states = states
        bits = (states[None, :] >> np.arange(n_spins)[:, None]) & 1
        self.z = 0.5 - bits.astype(np.float64)
        index = {int(s): m for m, s in enumerate(states)}
        rows, cols, bonds = [], [], []
        for b in range(n_spins - 1):
            differ = bits[b] != bits[b + 1]
            for m in np.nonzero(differ)[0]:
                swapped = int(states[m]) ^ ((1 << b) | (1 << (b + 1)))
                rows.append(m)
                cols.append(index[swapped])
                bonds.append(b)
        self.flip_rows = np.asarray(rows, dtype=np.int32)
        self.flip_cols = np.asarray(cols, dtype=np.int32)
        self.flip_bond = np.asarray(bonds, dtype=np.int32)
        self._index = index

    @property
    def dim(self) -> int:
        return len(self.states)

    def index_of(self, states: np.ndarray) -> np.ndarray:
        return np.array([self._index[int(s)] for s in states], dtype=np.int64)


@functools.cache
def sectors(n_spins: int) -> tuple[Sector, ...]:
    """The $N + 1$ sectors of an $N$-spin chain, by number of spins down."""
    return tuple(Sector(n_spins, k) for k in range(n_spins + 1))


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

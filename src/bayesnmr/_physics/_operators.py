"""Spin operators in the full $2^N$ Hilbert space, as dense NumPy matrices.

Used by the Liouville–von Neumann integrator and as an independent reference. The basis
is the computational one, with bit $i$ of the state index set when spin $i$ is down,
the same as the sectors in `_sectors.py`.
"""

import functools

import numpy as np

from ._system import chain_pairs

_IZ = np.array([[0.5, 0.0], [0.0, -0.5]])
_IP = np.array([[0.0, 1.0], [0.0, 0.0]])  # |up><down|


def _embed(op: np.ndarray, site: int, n_spins: int) -> np.ndarray:
    # Bit i of the index is spin i, so spin 0 is the least significant factor.
    out = np.ones((1, 1))
    for i in reversed(range(n_spins)):
        out = np.kron(out, op if i == site else np.eye(2))
    return out


@functools.cache
def spin_operators(n_spins: int) -> tuple[np.ndarray, np.ndarray]:
    """`(iz, ip)`: $I_{iz}$ and $I_{i+}$ for every spin, each of shape `(N, 2^N, 2^N)`."""
    iz = np.stack([_embed(_IZ, i, n_spins) for i in range(n_spins)])
    ip = np.stack([_embed(_IP, i, n_spins) for i in range(n_spins)])
    return iz, ip


@functools.cache
def hamiltonian_terms(n_spins: int, pairs=None) -> tuple[np.ndarray, np.ndarray]:
    r"""`(z, b)` with $H = 2\pi(\sum_i \nu_i z_i + \sum_p J_p b_p)$ in the full space.

    `z[i]` is $I_{iz}$ and `b[p]` is $\mathbf{I}_i\cdot\mathbf{I}_j$ for the pair
    $p = (i, j)$ of `pairs` (default: a chain's bonds $(b, b + 1)$).
    """
    iz, ip = spin_operators(n_spins)
    im = np.transpose(ip, (0, 2, 1))
    if pairs is None:
        pairs = chain_pairs(n_spins)
    bonds = [iz[i] @ iz[j] + 0.5 * (ip[i] @ im[j] + im[i] @ ip[j]) for i, j in pairs]
    dim = 2**n_spins
    return iz, np.stack(bonds) if bonds else np.zeros((0, dim, dim))

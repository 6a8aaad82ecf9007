"""The stick spectrum: the FID's lines (frequencies and intensities) of a spin system."""

import math

import numpy as np

from .._checks import check_positive, is_concrete
from ._sectors import fid_norm, raising_amplitudes, sector_hamiltonian
from ._streamed import eigh_in_place
from ._system import SpinChain, SpinSystem, System


def line_list(system: System, *, cutoff: float = 1e-3, merge_hz: float = 1e-6) -> np.ndarray:
    r"""The lines of the FID of `system`: an array of `(frequency in Hz, intensity)` rows,
    by ascending frequency.

    The FID is $M_+(t) = \sum_l (I_l / N)\, e^{i 2\pi f_l t}$ (times $e^{-t/T_2}$), with
    the intensities $I_l$ summing to the number of spins $N$, as in nmrsim's
    `qm_spinsystem` and the peak lists of other simulators. Computed exactly, sector by
    sector (as the exact solver): the frequencies are differences of eigenvalues of
    neighbouring $F_z$ sectors, the intensities $|\langle i|F_+|a\rangle|^2$.

    **Arguments:**

    - `system`: a `SpinSystem` or `SpinChain` with concrete values.
    - `cutoff`: lines weaker than this (in the units above) are left out (default 1e-3,
      as nmrsim).
    - `merge_hz`: lines closer than this are merged into one (intensities summed,
      frequency weighted by intensity), so a degenerate transition is one line.
    """
    if not isinstance(system, SpinChain | SpinSystem):
        raise ValueError(
            "Argument `system` must be a `bn.SpinSystem` or a `bn.SpinChain`, but is a "
            f"{type(system).__name__}."
        )
    if not (is_concrete(system.offsets_hz) and is_concrete(system.j_hz)):
        raise ValueError(
            "line_list needs concrete values (it runs in NumPy); call it outside "
            "`jax.jit`, `jax.vmap` and `jax.grad`."
        )
    check_positive("cutoff", cutoff, allow_zero=True)
    check_positive("merge_hz", merge_hz, allow_zero=True)
    n = system.n_spins
    if n > 14:
        raise ValueError(
            f"line_list: {n} spins have about {math.comb(n, n // 2) ** 2:.1e} lines in the "
            "largest pair of sectors; it is limited to N <= 14."
        )
    offsets = np.asarray(system.offsets_hz, np.float64)
    j = np.asarray(system.j_hz, np.float64)  # in NumPy: no JAX dispatch per call
    if isinstance(system, SpinSystem):
        i, k = np.triu_indices(n, 1)
        pair_j = 0.5 * (j[i, k] + j[k, i])
    else:
        pair_j = np.broadcast_to(j, (n - 1,))
    eig = [
        eigh_in_place(sector_hamiltonian(offsets, pair_j, k, xp=np, pairs=system.pairs))
        for k in range(n + 1)
    ]
    freq, weight = [], []
    for k in range(n):
        (lam, vp), (mu, vq) = eig[k], eig[k + 1]
        a = np.asarray(raising_amplitudes(n, k)(vp, vq))
        freq.append(((lam[:, None] - mu[None, :]) / (2 * np.pi)).ravel())
        weight.append((a * a).ravel() * (n / fid_norm(n)))
    freq, weight = np.concatenate(freq), np.concatenate(weight)
    keep = weight > 1e-14
    freq, weight = freq[keep], weight[keep]
    order = np.argsort(freq)
    freq, weight = freq[order], weight[order]
    # Merge runs of lines closer than merge_hz (a new group where the gap exceeds it).
    group = np.concatenate([[0], np.cumsum(np.diff(freq) > merge_hz)])
    total = np.bincount(group, weights=weight)
    centre = np.bincount(group, weights=weight * freq) / total
    out = np.column_stack([centre, total])
    return out[out[:, 1] >= cutoff]

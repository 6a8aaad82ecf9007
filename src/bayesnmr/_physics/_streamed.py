r"""The exact solver for long chains: one sector at a time, with bounded memory.

The jitted solver (`_exact.py`) holds every block's eigenvectors at once, which at
$N = 16$ is $\sum_k \binom{16}{k}^2 = 6 \times 10^8$ numbers (4.8 GB) before any
workspace. Here the sectors are visited in order, $k = N \dots 0$: block $k$ is built and
diagonalised, its `iz1` terms and its FID terms with sector $k + 1$ are summed, and then
sector $k + 1$ is dropped. At most two blocks' eigenvectors are alive, and the amplitude
matrices are formed a panel of columns at a time. This is plain NumPy/SciPy (LAPACK
`syevd`, BLAS matrix products), for concrete parameters only: no `jit`, no gradients.
"""

import numpy as np
import scipy.linalg
from tqdm.auto import tqdm

from ._lapack import lapack_threads
from ._sectors import raising_index, sector_hamiltonian, sectors
from ._spectral import reduce_angles


def eigh_in_place(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`eigh` after removing the mean diagonal, overwriting `h` (no copy of the block).

    LAPACK wants column-major storage: `h.T` is that (and, `h` being symmetric, the same
    matrix), so SciPy works in place; `h` itself would be copied first (1.3 GB at N = 16).
    """
    shift = np.trace(h) / h.shape[0]
    h[np.diag_indices_from(h)] -= shift
    lam, vec = scipy.linalg.eigh(h.T, overwrite_a=True, check_finite=False, driver="evd")
    return lam + shift, vec


def _table(lam: np.ndarray, times: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    x = reduce_angles(np.outer(lam, times), dtype, xp=np)
    return np.cos(x), np.sin(x)


def _panels(d: int, size: int):
    for start in range(0, d, size):
        yield np.arange(start, min(start + size, d))


def streamed_sums(
    offsets_hz: np.ndarray,
    pair_j_hz: np.ndarray,
    times: np.ndarray,
    time_dtype=None,
    panel: int = 1024,
    progress_bar: bool | None = None,
    pairs=None,
    iz_index: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The unnormalised spectral sums (Re FID, Im FID, iz1) at `times`, sector by sector.

    Same sums as the jitted solver: the FID over $|A_{ia}|^2 e^{i(\lambda_i - \mu_a)t}$
    with $A = V_k^\top F_+ V_{k+1}$, and `iz1` over $B_{ab}^2 \cos((\lambda_a -
    \lambda_b)t)$ with $B = V_{k,\uparrow}^\top V_{k,\uparrow} - \tfrac12$.
    `progress_bar=None` shows a bar on a terminal.
    """
    offsets_hz = np.asarray(offsets_hz, dtype=np.float64)
    pair_j_hz = np.asarray(pair_j_hz, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    dtype = np.dtype(time_dtype or np.float64)
    n = len(offsets_hz)
    fid_re, fid_im, iz1 = (np.zeros(len(times)) for _ in range(3))
    prev = None  # (eigenvectors, phase table) of sector k + 1
    # tqdm's disable=None: a bar on a terminal only.
    disable = None if progress_bar is None else not progress_bar
    with lapack_threads():  # one block at a time: LAPACK's own threads are the parallelism
        for k in tqdm(range(n, -1, -1), desc="sectors", leave=False, disable=disable):
            lam, vec = eigh_in_place(  # no name holds the block: it is overwritten
                sector_hamiltonian(offsets_hz, pair_j_hz, k, xp=np, pairs=pairs)
            )
            cos, sin = _table(lam, times, dtype)
            up = np.flatnonzero(sectors(n)[k].z[iz_index] > 0)
            v_up = vec[up]
            for cols in _panels(len(lam), panel):
                b = v_up.T @ v_up[:, cols]
                b[cols, np.arange(len(cols))] -= 0.5
                w = (b * b).astype(dtype)
                iz1 += np.einsum("it,it->t", cos, w @ cos[cols]) + np.einsum(
                    "it,it->t", sin, w @ sin[cols]
                )
            if prev is not None:
                vq, (cq, sq) = prev
                table = raising_index(n, k)
                for cols in _panels(vq.shape[1], panel):
                    panel_q = vq[:, cols]
                    fv = panel_q[table[:, 0]]
                    for c in range(1, table.shape[1]):
                        fv += panel_q[table[:, c]]
                    a = vec.T @ fv
                    w = (a * a).astype(dtype)
                    wc, ws = w @ cq[cols], w @ sq[cols]
                    fid_re += np.einsum("it,it->t", cos, wc) + np.einsum("it,it->t", sin, ws)
                    fid_im += np.einsum("it,it->t", sin, wc) - np.einsum("it,it->t", cos, ws)
            prev = (vec, (cos, sin))
    return fid_re, fid_im, iz1

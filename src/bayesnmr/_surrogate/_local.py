r"""Problem-local surrogates: the line list of the exact solver as a smooth function of
$\theta$ on a small region.

The traces are spectral sums $\sum_l w_l(\theta)\, e^{i\omega_l(\theta) t}$ over lines
$l$ (pairs of eigenstates). Over the whole domain the map $\theta \to$ traces oscillates
violently, but each line's frequency $\omega_l$ and weight $w_l$ is an analytic function
of $\theta$ away from level crossings: on a region of a few posterior widths (tenths of a
Hz) a quadratic in $\theta$ reproduces them to far below the noise. `LineNet` holds those
quadratics for the lines that carry all but a fraction `tol` of the intensity, and sums
the lines; no `eigh` is computed. Its cost is that of the sum over lines (at N = 10 about
10^4 lines, merged into a few thousand groups; at N = 12 about 4 x 10^4), which a
non-uniform FFT evaluates at every time at once (`line_sum`), not of the
eigendecompositions.

Training needs no optimiser: the exact solver's line list at a few hundred points of the
region (each line followed from point to point by the overlap of its eigenvectors with
those at the centre, so that crossing levels keep their identity), and one linear
least-squares solve for the coefficients.
"""

import time
import typing

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from tqdm.auto import tqdm

from .._physics._grid import TimeGrid
from .._physics._sectors import (
    fid_norm,
    iz1_amplitudes,
    iz1_norm,
    raising_amplitudes,
    sector_hamiltonian,
    sectors,
)
from .._physics._spectral import gridded_line_sum
from .._physics._streamed import eigh_in_place
from .._physics._system import SpinChain
from ._domain import Domain

_PAD = 256  # line counts are padded to a multiple of this: fewer shapes, fewer compilations


def n_features(n_params: int) -> int:
    """The number of quadratic features of `n_params` parameters."""
    return 1 + n_params + n_params * (n_params + 1) // 2


def quadratic_features(x: Float[Array, "*batch p"]) -> Float[Array, "*batch q"]:
    """$(1, x_i, x_i x_j\\ (i \\le j))$."""
    rows, cols = np.triu_indices(x.shape[-1])
    return jnp.concatenate(
        [jnp.ones(x.shape[:-1] + (1,), x.dtype), x, x[..., rows] * x[..., cols]], -1
    )


class LineNet(eqx.Module):
    r"""A problem-local surrogate: every line's frequency and weight a quadratic in
    $x = (\theta - \theta_0) / s$ on the region `[lower, upper]`, the traces the exact
    sums over those lines.

    All fields are arrays (the region too), so surrogates of the same chain length and
    padded line count share one compiled sampler.
    """

    centre: Array
    scale: Array
    lower: Array
    upper: Array
    fid_freq: Array  # (L, Q): rad/s
    fid_weight: Array  # (L, Q)
    iz1_freq: Array
    iz1_weight: Array
    grid: TimeGrid = eqx.field(static=True)
    n_spins: int = eqx.field(static=True)

    @property
    def domain(self) -> Domain:
        lo, hi = np.asarray(self.lower), np.asarray(self.upper)
        n = self.n_spins
        return Domain(n, np.stack([lo[:n], hi[:n]], -1), (float(lo[n]), float(hi[n])))

    def lines(self, theta: Float[Array, " p"]):
        """`(fid_freq, fid_weight, iz1_freq, iz1_weight)` at `theta`."""
        phi = quadratic_features((theta - self.centre) / self.scale)
        return (
            self.fid_freq @ phi,
            self.fid_weight @ phi,
            self.iz1_freq @ phi,
            self.iz1_weight @ phi,
        )

    def __call__(self, theta: Float[Array, " p"]) -> Float[Array, "3 n"]:
        n = self.n_spins
        ff, fw, fi, wi = self.lines(theta.astype(self.centre.dtype))
        mx, my = line_sum(ff, fw, self.grid)
        iz1, _ = line_sum(fi, wi, self.grid)
        out = jnp.stack([mx / fid_norm(n), my / fid_norm(n), iz1 / iz1_norm(n)])
        return out.astype(theta.dtype)


def line_sum(freq: Array, weight: Array, grid: TimeGrid) -> tuple[Array, Array]:
    r"""$\sum_l w_l \cos\omega_l t$ and $\sum_l w_l \sin\omega_l t$ at every time.

    By a non-uniform FFT (`gridded_line_sum`), errors about 1e-9: at N = 10 (4,352 line
    groups, 300 times) far cheaper than the phase table and two products it used before
    (`benchmarks/local_surrogate.py` times both)."""
    return gridded_line_sum(freq, weight, grid.n, grid.dt)


def empty_line_net(n_spins: int, grid: TimeGrid, n_fid: int, n_iz1: int) -> LineNet:
    """A `LineNet` of the given shapes, all zeros (the skeleton to load weights into)."""
    p = n_spins + 1
    q = n_features(p)
    z = jnp.zeros
    return LineNet(
        z(p), jnp.ones(p), z(p), jnp.ones(p), z((n_fid, q)), z((n_fid, q)), z((n_iz1, q)),
        z((n_iz1, q)), grid, n_spins,
    )  # fmt: skip


def _decompose(n: int, theta: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Eigenvalues and eigenvectors of every block at `theta`, in NumPy (no JAX dispatch:
    at N = 10 the eager JAX blocks took 0.1 s per point, most of the training)."""
    offsets, bond_j = np.asarray(theta[:n], np.float64), np.full(n - 1, float(theta[n]))
    return [eigh_in_place(sector_hamiltonian(offsets, bond_j, k, xp=np)) for k in range(n + 1)]


def _match(v_ref: np.ndarray, v: np.ndarray) -> np.ndarray:
    """`perm[i]`: the column of `v` that is the state `i` of `v_ref` (largest overlap)."""
    overlap = np.abs(v_ref.T @ v)
    perm = overlap.argmax(1)
    if np.unique(perm).size != perm.size:
        from scipy.optimize import linear_sum_assignment

        _, perm = linear_sum_assignment(-overlap)
    return perm


def _amplitudes(n: int, eig, iz_index: int = 0) -> tuple[list, list]:
    """The FID's and `iz1`'s amplitudes (`iz1`: of spin `iz_index`, from 0)."""
    fid = [np.asarray(raising_amplitudes(n, k)(eig[k][1], eig[k + 1][1])) for k in range(n)]
    iz1 = [
        np.asarray(iz1_amplitudes(sectors(n)[k].z[iz_index])(eig[k][1], eig[k][1]))
        for k in range(n + 1)
    ]
    return fid, iz1


def _select(mats: list[np.ndarray], tol: float, pairs: bool) -> np.ndarray:
    """Index arrays `(term, i, a)` of the lines that carry all but `tol` of the weight.

    With `pairs` (iz1: one sector, i <= a), the pair (i, a) stands for both orders."""
    w, index = [], []
    for term, a in enumerate(mats):
        x = a * a
        if pairs:
            x = np.triu(x + x.T) - np.diag(np.diag(x))  # (i, a) and (a, i) together
        rows, cols = np.nonzero(x > 0)
        w.append(x[rows, cols])
        index.append(np.stack([np.full(rows.size, term), rows, cols], 1))
    w, index = np.concatenate(w), np.concatenate(index)
    order = np.argsort(-w)
    cum = np.cumsum(w[order])
    keep = order[: int(np.searchsorted(cum, cum[-1] * (1 - tol))) + 1]
    return index[keep]


def _line_values(n, eig, fid_idx, iz1_idx, perms, iz_index=0):
    """Frequencies (rad/s) and weights of the chosen lines at one point."""
    fid, iz1 = _amplitudes(n, eig, iz_index)
    out = []
    for idx, mats, pairs in ((fid_idx, fid, False), (iz1_idx, iz1, True)):
        freq, weight = np.empty(len(idx)), np.empty(len(idx))
        for term in np.unique(idx[:, 0]):
            sel = idx[:, 0] == term
            p, q = (term, term + 1) if not pairs else (term, term)
            i, a = perms[p][idx[sel, 1]], perms[q][idx[sel, 2]]
            amp = mats[term][i, a]
            freq[sel] = eig[p][0][i] - eig[q][0][a]
            twice = pairs & (idx[sel, 1] != idx[sel, 2])  # iz1: (i, a) stands for (a, i) too
            weight[sel] = amp * amp * np.where(twice, 2.0, 1.0)
        out += [freq, weight]
    return out


def fit_line_net(
    lower,
    upper,
    grid: TimeGrid,
    *,
    tol: float = 1e-4,
    merge_error: float = 1e-5,
    n_points: int | None = None,
    seed: int = 0,
    progress_bar: bool = True,
    system=None,
) -> tuple[LineNet, dict]:
    """Fit a `LineNet` on the box `[lower, upper]` (offsets then J, Hz) from exact line
    lists at `n_points` points (default: twice the number of coefficients per line, plus
    16); returns the net and a training record.

    `system`: for any network of couplings, a function from a parameter vector (any
    length, the box's) to its `SpinSystem` (whose `iz_spin` the `iz1` lines follow);
    default: a chain's offsets then its one J.

    Neighbouring lines are merged into bundles (their summed weight at their weighted
    mean frequency) while the error that makes, second order in their spread, stays
    below `merge_error` of the total intensity per bundle: weak lines merge widely,
    strong ones stay apart. Most lines of a long chain come in such bundles
    (transitions of one spin with the far spins up or down).
    """
    from scipy.stats import qmc

    lower, upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    p = lower.size
    q = n_features(p)
    centre, scale = (lower + upper) / 2, (upper - lower) / 2
    if system is None:
        n, iz_index = p - 1, 0

        def decompose(theta):
            return _decompose(n, theta)
    else:
        s0 = system(centre)
        n, iz_index, pairs = s0.n_spins, s0.iz_spin - 1, s0.pairs

        def decompose(theta):
            s = system(theta)
            nu, pj = np.asarray(s.offsets_hz, np.float64), np.asarray(s.pair_j_hz, np.float64)
            return [
                eigh_in_place(sector_hamiltonian(nu, pj, k, xp=np, pairs=pairs))
                for k in range(n + 1)
            ]

    m = 2 * q + 16 if n_points is None else int(n_points)
    x = np.concatenate([np.zeros((1, p)), 2 * qmc.LatinHypercube(d=p, rng=seed).random(m - 1) - 1])
    eig0 = decompose(centre)
    fid0, iz10 = _amplitudes(n, eig0, iz_index)
    fid_idx, iz1_idx = _select(fid0, tol, False), _select(iz10, tol, True)
    values = []
    for xi in tqdm(x, disable=not progress_bar, desc="local surrogate: exact line lists"):
        eig = eig0 if not xi.any() else decompose(centre + scale * xi)
        perms = [_match(v0, v) for (_, v0), (_, v) in zip(eig0, eig, strict=True)]
        values.append(_line_values(n, eig, fid_idx, iz1_idx, perms, iz_index))
    phi = np.asarray(quadratic_features(jnp.asarray(x)))
    coef, residual, counts = [], [], []
    for freq, weight in ((0, 1), (2, 3)):
        f = np.stack([v[freq] for v in values])  # (m, L), rad/s
        w = np.stack([v[weight] for v in values])
        f, w = _merge(f, w, float(grid.times[-1]), merge_error)
        counts.append(f.shape[1])
        for y in (f, w):
            c, *_ = np.linalg.lstsq(phi, y, rcond=None)
            coef.append(c.T)
            residual.append(float(np.abs(phi @ c - y).max(initial=0.0)))

    def pad(c):
        extra = -len(c) % _PAD
        return np.concatenate([c, np.zeros((extra, q))]) if extra else c

    fid_freq, fid_weight, iz1_freq, iz1_weight = (jnp.asarray(pad(c)) for c in coef)
    net = LineNet(
        jnp.asarray(centre), jnp.asarray(scale), jnp.asarray(lower), jnp.asarray(upper),
        fid_freq, fid_weight, iz1_freq, iz1_weight, grid, n,
    )  # fmt: skip
    record = {
        "points": m,
        "tol": tol,
        "fid_lines": len(fid_idx),
        "iz1_lines": len(iz1_idx),
        "fid_groups": counts[0],
        "iz1_groups": counts[1],
        # The largest misfit of the quadratics at the training points: frequencies in Hz
        # (the phase error grows as 2 pi t times it), weights as a share of mx(0) = 1.
        "max_frequency_residual_hz": max(residual[0], residual[2]) / (2 * np.pi),
        "max_weight_residual": residual[1] / fid_norm(n),
    }
    return net, record


def _merge(
    f: np.ndarray, w: np.ndarray, tmax: float, error: float
) -> tuple[np.ndarray, np.ndarray]:
    """Merge neighbouring lines (columns; rows are points) into bundles.

    A bundle of weight $W$ whose frequencies spread by $\\Delta$ at some point stands
    for its lines with an error of at most $W (\\Delta t_\\max)^2 / 2$ (second order:
    its frequency is the weighted mean); lines join a bundle while that stays below
    `error` times the total weight, and the spread below 1 rad. Weak lines merge into
    wide bundles, strong lines stay apart."""
    order = np.argsort(f[0])
    budget = error * float(w[0].sum())
    groups, start = [], 0
    lo = hi = f[:, order[0]]
    total = w[:, order[0]]
    for i in range(1, len(order) + 1):
        if i < len(order):
            col = order[i]
            lo2, hi2 = np.minimum(lo, f[:, col]), np.maximum(hi, f[:, col])
            phase = float((hi2 - lo2).max()) * tmax
            weight = float((total + w[:, col]).max())
            if phase <= 1.0 and weight * phase**2 / 2 <= budget:
                lo, hi, total = lo2, hi2, total + w[:, col]
                continue
        groups.append(order[start:i])
        if i < len(order):
            start, lo, hi, total = i, f[:, order[i]], f[:, order[i]], w[:, order[i]]
    fm = np.empty((f.shape[0], len(groups)))
    wm = np.empty_like(fm)
    for g, idx in enumerate(groups):
        tot = w[:, idx].sum(1)
        wm[:, g] = tot
        safe = np.where(tot > 0, tot, 1)
        fm[:, g] = np.where(tot > 0, (w[:, idx] * f[:, idx]).sum(1) / safe, f[:, idx[0]])
    return fm, wm


def region_box(centre, sd, widen: float, within=None) -> tuple[np.ndarray, np.ndarray]:
    """`centre` +- `widen` sd, inside the box `within` (a pair of arrays) if given."""
    centre, sd = np.asarray(centre, np.float64), np.asarray(sd, np.float64)
    half = widen * np.maximum(sd, 1e-6 * max(1.0, float(np.abs(centre).max())))
    lo, hi = centre - half, centre + half
    if within is not None:
        lo, hi = np.maximum(lo, within[0]), np.minimum(hi, within[1])
    if np.any(hi <= lo):
        raise ValueError("The local surrogate's region is empty: the mode lies outside the box.")
    return lo, hi


@typing.no_type_check  # validates its own arguments, with errors that name the fix
def train_local_surrogate(
    region: Domain,
    grid: TimeGrid,
    *,
    tol: float = 1e-4,
    n_points: int | None = None,
    seed: int = 0,
    progress_bar: bool = True,
):
    r"""Train a problem-local surrogate on `region` from exact solves made there.

    A `LineNet` (see the module's text): each line of the exact solver (a pair of
    eigenstates) has a frequency and a weight that are smooth in $\theta$ on a small
    region, so a quadratic in $\theta$ per line, fitted by least squares to exact line
    lists at a few hundred points of the region, reproduces the traces far below the
    noise; the traces are the sums over the lines (a non-uniform FFT, errors about
    1e-9). Training takes seconds (172 exact line lists at N = 10); a gradient of the
    surrogate then costs a small fraction of an exact one (`benchmarks/local_surrogate.py`
    measures both, and the whole workflow: [Benchmarks](benchmarks.md)).

    **Arguments:**

    - `region`: a `bn.Domain` with one box per offset (`offsets_hz` of shape `(N, 2)`)
      and one for J: where the surrogate will be used. Make it a few posterior widths
      wide (`sample_posterior(solver="local")` takes 10 Laplace sds around each mode).
    - `grid`: the `TimeGrid` of the data.
    - `tol`: the share of the intensity that the dropped weakest lines may carry.
    - `n_points`: exact solves to fit from (default: twice the coefficients per line,
      plus 16: 58 at N = 4, 172 at N = 10).
    - `seed`, `progress_bar`: the usual.

    **Returns:** a `bn.Surrogate` (architecture `"lines"`) whose domain is `region`; it
    refuses parameters outside it, saves and loads as any `.bnsur` file, and its
    `metadata["training"]` records the lines kept and the fit's residuals.
    """
    import json

    from .._physics._exact import ExactSolver
    from ._solver import Surrogate

    if not isinstance(region, Domain):
        raise ValueError(
            f"Argument `region` must be a `bn.Domain`, got {type(region).__name__}; build one "
            "with per-spin boxes, e.g. `bn.Domain(n, offsets_hz=boxes, j_hz=(lo, hi))`."
        )
    if not isinstance(grid, TimeGrid):
        raise ValueError(f"Argument `grid` must be a `bn.TimeGrid`, got {type(grid).__name__}.")
    if not 0 < tol < 1:
        raise ValueError(f"Argument `tol` must be in (0, 1), got {tol!r}.")
    ExactSolver().check(SpinChain(np.zeros(region.n_spins)), grid)  # N within reach
    t0 = time.perf_counter()
    net, record = fit_line_net(
        region.lower, region.upper, grid, tol=tol, n_points=n_points, seed=seed,
        progress_bar=progress_bar,
    )  # fmt: skip
    record["seconds"] = time.perf_counter() - t0
    info = {"architecture": "lines", "training": record, "seed": seed}
    return Surrogate(net, "raise", json.dumps(info))

"""The global search behind `fit`: from the data alone to the best misfit.

The FID misfit has a false minimum about every $1/T$ Hz in each offset, and the order
of the spins along the chain is unknown, so no single descent finds the optimum. The
search (design and figures in docs/inference.md):

1. **Candidates.** Offset sets from multiplet analysis of the spectrum
   (`_multiplets.py`, one per trial J), each in every order along the chain that the
   prior boxes allow (N!/2 orders when the FID alone cannot tell a chain from its
   mirror), with J near the trial value; and random starts drawn from the spectrum's
   lines.
2. **Screening.** The line-broadened misfit (residuals weighted by $e^{-t/\\tau}$,
   smooth on the scale of a multiplet) at every candidate, in batches.
3. **Short descents** from the best `4 n_starts` on the broadened misfits, so that
   orders are compared at their own best offsets; the best `n_starts` go on.
4. **Full descents**: coarse to fine broadening, then the data themselves.
5. **Hops**: every reordering of the best four solutions' offsets, through steps 2-4
   again, until the misfit stops improving.

**Returns** the distinct optima found, best first.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from ._data import Dataset
from ._descent import Space, descend_stage, part_rows, screen, split_rows, to_hz
from ._multiplets import candidate_sets, line_density

_MAX_ORDERS = 2000  # orders tried per offset set (sampled beyond this)
_MAX_HOPS = 8  # rounds of reordering (each must lower the misfit to go on)
_PAD = 512  # rows per screening batch (one compilation)


def mirror_symmetric(space: Space, data: Dataset) -> bool:
    """Whether the data and priors cannot tell a chain from its mirror image (FID only, or
    two spins, whose iz1 depends on (nu_1 - nu_2)^2 alone; boxes symmetric under
    reversal): then offsets are reported with nu_1 <= nu_N."""
    if (data.iz1 is not None and space.priors.n_spins > 2) or not space.free_offsets:
        return False
    p = space.priors
    same = np.allclose(p.offsets_hz, p.offsets_hz[::-1])
    return bool(same and (not p.per_bond or np.allclose(p.j_hz, p.j_hz[::-1])))


def canonical(x: np.ndarray, n_spins: int, per_bond: bool) -> np.ndarray:
    """Rows of `x` (offsets first) reversed where nu_1 > nu_N: the mirror convention."""
    x = np.array(x, dtype=float, copy=True)
    flip = x[:, 0] > x[:, n_spins - 1]
    x[flip, :n_spins] = x[flip, :n_spins][:, ::-1]
    if per_bond:
        x[flip, n_spins:] = x[flip, n_spins:][:, ::-1]
    return x


def search(data: Dataset, space: Space, solver, *, n_starts, steps, broadening, seed, progress_bar):
    """The distinct optima `(x (K, d) in Hz, misfit (K,))`, best first, and the count of
    starts descended. `progress_bar`: a bar over the stages (None: on a terminal only)."""
    rng = np.random.default_rng(seed)
    mirror = mirror_symmetric(space, data)
    consts = space.consts(data)
    screen_plan = space.plan(data, 1)
    coarse, fine = (broadening[0], broadening[-1]) if broadening else (None, None)
    short = min(max(steps // 3, 5), steps)
    # On a CPU the short descents run the full ones' program for fewer steps (one
    # compilation); under `vmap` (elsewhere) a traced step count would run every step.
    if jax.default_backend() == "cpu":
        pre_steps, pre_kw = steps, {"n_steps": short, "part": part_rows(n_starts)}
    else:
        pre_steps, pre_kw = short, {}

    def stage(cands):
        """Screen, short descents from the best 4 n_starts, full ones from the best n_starts."""
        best = np.argsort(_screen(screen_plan, consts, solver, coarse, cands))[: 4 * n_starts]
        pre = _pad(cands[best], 4 * n_starts)
        pre, _ = _descents(
            data, space, consts, solver, pre, pre_steps, tuple(dict.fromkeys((coarse, fine))),
            **pre_kw,
        )  # fmt: skip
        best = np.argsort(_screen(screen_plan, consts, solver, fine, pre))[:n_starts]
        return _descents(data, space, consts, solver, pre[best], steps, (*broadening, None))

    bar = tqdm(
        desc="fit: global search", unit="stage", disable=_disabled(progress_bar), leave=False
    )
    with bar:
        xs, losses = stage(_candidates(data, space, rng, mirror, max(64 * n_starts, 1024)))
        bar.update()
        n_descended = 5 * n_starts
        for _ in range(_MAX_HOPS):  # every order of the best solutions' offsets, again
            pool = _distinct(xs, losses)[:4]
            hop_x, hop_l = stage(np.vstack([_reorders(x, space, mirror, rng) for x in xs[pool]]))
            n_descended += 5 * n_starts
            improved = hop_l.min() < losses.min() * (1 - 1e-9)
            xs, losses = np.vstack([xs, hop_x]), np.r_[losses, hop_l]
            bar.update()
            bar.set_postfix(misfit=f"{losses.min():.6g}")
            if not improved:
                break
    if mirror:
        xs = canonical(xs, space.priors.n_spins, space.priors.per_bond)
    keep = _distinct(xs, losses)
    return xs[keep], losses[keep], n_descended


def _candidates(data, space: Space, rng, mirror: bool, n_random: int) -> np.ndarray:
    p = space.priors
    n = p.n_spins
    jb = p.j_hz.reshape(-1, 2)
    n_j = jb.shape[0] if p.per_bond else 1
    j_lo, j_hi = float(jb[:, 0].min()), float(jb[:, 1].max())
    if space.free_j:
        j_grid = np.arange(j_lo + 0.5, j_hi, 1.0) if j_hi - j_lo > 1 else [(j_lo + j_hi) / 2]
    else:
        j_grid = [float(np.mean(p.fixed["j_hz"]))]
    rows = []
    if not space.free_offsets:
        rows = [np.full(n_j, j) for j in j_grid]
        return space.clip(np.array(rows))
    for offsets, j, _ in candidate_sets(data, n, j_grid, p.offsets_hz)[:6]:
        js = [j] if not space.free_j else np.clip(np.arange(j - 2, j + 2.5, 1.0), j_lo, j_hi)
        for order in _orders(offsets, p.offsets_hz, mirror, rng):
            for jv in np.unique(js):
                rows.append(np.r_[offsets[order], [jv] * n_j if space.free_j else []])
    # Random starts: offsets drawn from the spectrum's lines inside each box.
    freqs, density = line_density(data)
    draws = np.empty((n_random, n))
    for i, (lo, hi) in enumerate(p.offsets_hz):
        w = np.where((freqs >= lo) & (freqs <= hi), density, 0.0)
        draws[:, i] = (
            rng.choice(freqs, n_random, p=w / w.sum()) + rng.normal(0, 2.0, n_random)
            if w.sum() > 0
            else rng.uniform(lo, hi, n_random)
        )
    if space.free_j:
        draws = np.column_stack([draws, rng.uniform(jb[:, 0], jb[:, 1], (n_random, n_j))])
    cands = np.vstack([np.array(rows).reshape(-1, draws.shape[1]), draws])
    if mirror:
        cands = canonical(cands, n, p.per_bond)
    return space.clip(cands)


def _orders(values: np.ndarray, boxes: np.ndarray, mirror: bool, rng) -> list:
    """Orders of `values` along the chain that put each inside its position's box."""
    n = len(values)
    inside = (values[None, :] >= boxes[:, :1]) & (values[None, :] <= boxes[:, 1:])
    if n <= 8:
        perms = itertools.permutations(range(n))
    else:
        perms = (tuple(rng.permutation(n)) for _ in range(20 * _MAX_ORDERS))
    out = []
    for perm in perms:
        if mirror and values[perm[0]] > values[perm[-1]]:
            continue
        if all(inside[i, k] for i, k in enumerate(perm)):
            out.append(list(perm))
            if len(out) >= 20 * _MAX_ORDERS:
                break
    if not out:  # no order fits every box: keep the values where they are in the boxes
        out = [list(np.argsort(np.argsort(boxes.mean(1))))]
    if len(out) > _MAX_ORDERS:
        out = [out[i] for i in rng.choice(len(out), _MAX_ORDERS, replace=False)]
    return out


def _reorders(x: np.ndarray, space: Space, mirror: bool, rng) -> np.ndarray:
    """Every order along the chain of a solution's offsets (J kept)."""
    n = space.priors.n_spins
    if not space.free_offsets:
        return x[None]
    rows = [np.r_[x[:n][o], x[n:]] for o in _orders(x[:n], space.priors.offsets_hz, mirror, rng)]
    return space.clip(np.array(rows))


def _screen(plan, consts, solver, tau, xs: np.ndarray) -> np.ndarray:
    """`screen` on `xs` in batches of `_PAD` rows (one compilation for any count and
    `tau`)."""
    k = len(xs)
    padded = np.vstack([xs, np.repeat(xs[-1:], -k % _PAD, axis=0)])
    tau = jnp.asarray(np.inf if tau is None else tau)
    out = [screen(plan, consts, solver, tau, padded[i : i + _PAD]) for i in range(0, k, _PAD)]
    return np.concatenate([np.asarray(o) for o in out])[:k]


def _pad(rows: np.ndarray, size: int) -> np.ndarray:
    """`rows` repeated up to `size` rows: every batch of a stage has one shape."""
    return rows[np.arange(size) % len(rows)]


def _descents(data, space, consts, solver, starts, steps, taus, n_steps=None, part=None):
    """L-BFGS from each row of `starts` (Hz) through the stages `taus`, `n_steps` steps
    each (default `steps`), in parts of `part` rows (default: one per core): the end
    points (Hz) and their misfits on the data. The short descents run the full ones'
    program (`steps` and the part's size fix it) for fewer steps: one compilation."""
    plan = space.plan(data, steps)
    u = jnp.asarray(space.to_u(starts))
    count = jnp.asarray(steps if n_steps is None else n_steps)  # traced: one program
    for tau in taus:
        tau = jnp.asarray(np.inf if tau is None else tau)
        u = split_rows(descend_stage, plan, consts, solver, tau, u, count, rows=4, part=part)[0]
    x = np.asarray(jax.vmap(lambda v: to_hz(consts, v))(u))
    return x, _screen(space.plan(data, 1), consts, solver, None, x)


def _distinct(xs: np.ndarray, losses: np.ndarray, tol_hz: float = 0.5) -> list[int]:
    """Indices of the distinct solutions (no two within `tol_hz` in every parameter),
    lowest misfit first."""
    keep: list[int] = []
    for i in np.argsort(losses):
        if np.isfinite(losses[i]) and all(np.abs(xs[i] - xs[k]).max() > tol_hz for k in keep):
            keep.append(int(i))
    return keep


def _disabled(progress_bar: bool | None) -> bool | None:
    """tqdm's `disable` for a `progress_bar` setting (None: a bar on a terminal only)."""
    return None if progress_bar is None else not progress_bar

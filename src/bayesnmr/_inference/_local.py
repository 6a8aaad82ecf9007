"""Problem-local surrogates inside inference: the region around a mode of the fit, and the
surrogate trained on it with the priors cut down to its domain."""

import dataclasses

import numpy as np

from .._physics._grid import TimeGrid
from .._surrogate._domain import Domain
from .._surrogate._local import region_box, train_local_surrogate
from .._surrogate._solver import Surrogate
from ._correct import edge_problem
from ._descent import Space
from ._model import Priors
from ._modes import Mode


def local_model(
    mode: Mode, priors: Priors, grid: TimeGrid, *, seed: int, progress_bar: bool | None
) -> tuple[Surrogate, Priors]:
    """A problem-local surrogate around `mode` and the priors restricted to its domain."""
    solver = train_local_surrogate(
        local_region(mode, priors), grid, seed=seed, progress_bar=progress_bar
    )
    return solver, restricted(priors, solver.domain)


def local_region(mode: Mode, priors: Priors, widen: float = 10.0):
    """The region of a problem-local surrogate: `widen` Laplace sds around `mode` in every
    free parameter (inside the prior boxes), the fixed ones at their values."""
    space = Space(priors)
    n = priors.n_spins
    x = np.r_[
        mode.offsets_hz if space.free_offsets else [],
        np.atleast_1d(mode.j_hz)[:1] if space.free_j else [],
    ]
    lo, hi = region_box(x, mode.stderr[: x.size], widen, (space.lo[: x.size], space.hi[: x.size]))
    if space.free_offsets:
        lo_o, hi_o, lo, hi = lo[:n], hi[:n], lo[n:], hi[n:]
    else:
        off = np.asarray(priors.fixed["offsets_hz"], float)
        lo_o, hi_o = off - 1e-6, off + 1e-6
    if space.free_j:
        box_j = (float(lo[0]), float(hi[0]))
    else:
        j = float(np.asarray(priors.fixed["j_hz"]))
        box_j = (j - 1e-6, j + 1e-6)
    return Domain(n, np.stack([lo_o, hi_o], -1), box_j)


def restricted(priors: Priors, domain) -> Priors:
    """`priors` with every free box cut down to `domain`."""
    box = domain.offset_boxes
    return dataclasses.replace(priors, offsets_hz=box, j_hz=np.asarray(domain.j_hz, float))


def region_edge(samples: dict, region: Priors, priors: Priors) -> str:
    """`edge_problem` of a chain's draws: `region` the priors cut to a local surrogate's
    domain, `priors` the boxes they were cut from."""
    cols, lo, hi, plo, phi, names = [], [], [], [], [], []
    for key in ("offsets_hz", "j_hz"):
        if key not in samples:
            continue
        v = np.asarray(samples[key])
        v = v.reshape(v.shape[0] * v.shape[1], -1)
        r = np.broadcast_to(np.asarray(getattr(region, key), float).reshape(-1, 2), (v.shape[1], 2))
        q = np.broadcast_to(np.asarray(getattr(priors, key), float).reshape(-1, 2), (v.shape[1], 2))
        cols.append(v)
        lo, hi = [*lo, *r[:, 0]], [*hi, *r[:, 1]]
        plo, phi = [*plo, *q[:, 0]], [*phi, *q[:, 1]]
        names += [f"{key}[{i}]" for i in range(v.shape[1])] if v.shape[1] > 1 else [key]
    return edge_problem(np.hstack(cols), lo, hi, plo, phi, names)

"""A network's free parameters (`NetworkSpace`): the shifts and couplings of a `SystemSpec`
that are free in a box or tied to another, as one vector in Hz."""

import jax.numpy as jnp
import numpy as np

from .._physics._solver import AbstractSolver
from .._physics._system import SpinSystem
from .._physics._system_file import SystemSpec
from ._data import Dataset


class NetworkSpace:
    """The free parameters of a `SystemSpec` as one vector in Hz: the offsets with a box,
    then one coupling per free coupling (a tied coupling shares its root's parameter),
    in the file's order; `system(x)` is the `SpinSystem` at `x`."""

    def __init__(self, spec: SystemSpec):
        if not isinstance(spec, SystemSpec):
            raise ValueError(
                f"Expected a `SystemSpec` (from `bn.load_spin_system`), got {type(spec).__name__}."
            )
        self.spec = spec
        s = spec.system
        n = s.n_spins
        self.free_offsets = [i for i, b in enumerate(spec.offset_boxes) if b is not None]
        roots = [c for c in spec.couplings if c.tied_to is None and c.box is not None]
        self.coupling_pairs = [
            [c.pair] + [d.pair for d in spec.couplings if d.tied_to == c.pair] for c in roots
        ]
        masks = np.zeros((len(roots), n, n))
        for p, pairs in enumerate(self.coupling_pairs):
            for i, k in pairs:
                masks[p, i, k] = masks[p, k, i] = 1.0
        self.masks = masks
        self.fixed_j = np.asarray(s.j_hz) * (1.0 - masks.sum(0))
        self.base_offsets = np.asarray(s.offsets_hz, np.float64)
        boxes = [spec.offset_boxes[i] for i in self.free_offsets] + [c.box for c in roots]
        self.lo = np.array([b[0] for b in boxes], np.float64)
        self.hi = np.array([b[1] for b in boxes], np.float64)
        names = spec.names
        self.offset_names = [names[i] for i in self.free_offsets]
        self.coupling_names = [f"{names[c.pair[0]]}-{names[c.pair[1]]}" for c in roots]
        self.names = [f"offsets_hz[{x}]" for x in self.offset_names] + [
            f"j_hz[{x}]" for x in self.coupling_names
        ]
        self.start = np.r_[self.base_offsets[self.free_offsets], [c.j_hz for c in roots]]

    @property
    def n_offsets(self) -> int:
        return len(self.free_offsets)

    def system(self, x) -> SpinSystem:
        k = self.n_offsets
        nu = jnp.asarray(self.base_offsets).at[jnp.asarray(self.free_offsets, int)].set(x[:k])
        j = jnp.asarray(self.fixed_j) + jnp.tensordot(x[k:], jnp.asarray(self.masks), 1)
        s = self.spec.system
        return SpinSystem(nu, j, s.t2_s, iz_spin=s.iz_spin, names=s.names)

    def matrix(self, x) -> np.ndarray:
        return np.asarray(self.system(jnp.asarray(x)).j_hz)

    def free(self, offsets_hz, j_hz) -> np.ndarray:
        """The free-parameter vector of a system's offsets `(N,)` and couplings `(N, N)`."""
        j = np.asarray(j_hz)
        roots = [j[pairs[0]] for pairs in self.coupling_pairs]
        return np.r_[np.asarray(offsets_hz)[self.free_offsets], roots].astype(np.float64)

    def split(self, x) -> tuple[np.ndarray, np.ndarray]:
        """The offsets `(N,)` and the coupling matrix `(N, N)` in Hz at `x`."""
        system = self.system(jnp.asarray(x))
        return np.asarray(system.offsets_hz), np.asarray(system.j_hz)


def check_network_data(data: Dataset, space: NetworkSpace, solver) -> None:
    s = space.spec.system
    if data.n_spins != s.n_spins:
        raise ValueError(
            f"The spin system has {s.n_spins} spins but the data are for {data.n_spins}."
        )
    if data.iz1 is not None and data.iz_spin != s.iz_spin:
        raise ValueError(
            f"The data's `iz1` is the polarisation of spin {data.iz_spin}, but the spin "
            f"system's `iz_spin` is {s.iz_spin}: set `iz_spin` in the file to the observed "
            "spin."
        )
    if not space.names:
        raise ValueError(
            "Nothing to fit: no shift or coupling of the spin system has a prior box. Give "
            "the free ones `range_hz` (or `range_ppm`) in the file."
        )
    if solver is not None:
        if not isinstance(solver, AbstractSolver):
            raise ValueError(f"Argument `solver` must be a solver object, got {solver!r}.")
        solver.check(s, data.grid)

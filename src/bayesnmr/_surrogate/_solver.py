"""A trained network as a forward model with the exact solver's interface."""

import json
import warnings
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._checks import is_concrete
from .._physics._grid import TimeGrid
from .._physics._solver import AbstractSolver
from .._physics._system import SpinChain
from .._physics._traces import Traces
from ._domain import Domain
from ._local import LineNet
from ._nets import ARCHITECTURES, EigenNet, MLPNet


class DomainWarning(UserWarning):
    """A surrogate was called outside its training domain and asked only to warn."""


class Surrogate(AbstractSolver):
    """A trained surrogate: `simulate(chain, grid, solver=surrogate)` gives `Traces`.

    Get one from `bn.load_surrogate` (a shipped model by name, or a saved file) or from
    `bn.train_surrogate`. It serves one chain length and one `TimeGrid`, on the
    parameter box (`domain`) it was trained on. Calls outside that box raise
    `ValueError`, or warn with `DomainWarning` after `.with_domain_check("warn")`;
    the check sees concrete parameters only, so under `jit` or inside NumPyro the
    parameter boxes are checked instead (`check_box`).

    **Attributes:** `net` (the Equinox network), `domain`, `grid`, `architecture`
    (`"eigen"`, `"mlp"`, or `"lines"` for a problem-local surrogate from
    `bn.train_local_surrogate`), `info` (a JSON string: hyperparameters, training record).
    """

    net: EigenNet | MLPNet | LineNet
    approximate: ClassVar[bool] = True
    on_domain_error: str = eqx.field(static=True, default="raise")
    info: str = eqx.field(static=True, default="{}")

    @property
    def domain(self) -> Domain:
        return self.net.domain

    @property
    def grid(self) -> TimeGrid:
        return self.net.grid

    @property
    def n_spins(self) -> int:
        if isinstance(self.net, LineNet):  # its region is arrays, traced under `jit`
            return self.net.n_spins
        return self.net.domain.n_spins

    @property
    def architecture(self) -> str:
        if isinstance(self.net, LineNet):
            return "lines"
        return next(k for k, v in ARCHITECTURES.items() if isinstance(self.net, v))

    @property
    def metadata(self) -> dict:
        return json.loads(self.info)

    def with_domain_check(self, mode: str) -> "Surrogate":
        """A copy that, outside the domain, raises (`"raise"`) or warns (`"warn"`)."""
        if mode not in ("raise", "warn"):
            raise ValueError(f"Argument `mode` must be 'raise' or 'warn', got {mode!r}.")
        return Surrogate(self.net, mode, self.info)

    def check(self, chain: SpinChain, grid: TimeGrid) -> None:
        n = self.n_spins
        if not isinstance(chain, SpinChain):
            raise ValueError(
                "Surrogates are trained for chains (`bn.SpinChain`), but got a "
                f"{type(chain).__name__}. Simulate a network of couplings with "
                "`bn.ExactSolver()` (the default) or `bn.TypicalitySolver()`."
            )
        if chain.n_spins != n:
            raise ValueError(
                f"This surrogate was trained for chains of {n} spins, but the chain has "
                f"{chain.n_spins}. Load a surrogate for {chain.n_spins} spins, train one "
                "(`bayesnmr train`), or use `bn.ExactSolver()`."
            )
        if (grid.n, grid.dt) != (self.grid.n, self.grid.dt):
            raise ValueError(
                f"This surrogate was trained on TimeGrid(n={self.grid.n}, "
                f"dt={self.grid.dt:g}) but was asked for TimeGrid(n={grid.n}, "
                f"dt={grid.dt:g}). Resample the data onto its grid, or use an exact solver."
            )
        if chain.j_hz.ndim != 0:
            raise ValueError(
                "This surrogate takes one coupling J for every bond, but the chain has "
                "per-bond couplings. Use `bn.ExactSolver()` for per-bond J."
            )
        theta = chain.theta()
        if is_concrete(theta):
            self._report(self.domain.outside(theta), "the chain")

    def check_box(self, lower, upper, *, per_bond: bool = False) -> None:
        """Refuse a parameter box that reaches outside the training domain."""
        if per_bond:
            raise ValueError(
                "This surrogate takes one coupling J for every bond; the box has per-bond "
                "couplings. Use one `j_hz` box, or `bn.ExactSolver()`."
            )
        if np.size(lower) != self.n_spins + 1:
            raise ValueError(
                f"The box is for {np.size(lower) - 1} spins but the surrogate serves "
                f"{self.n_spins}."
            )
        self._report(self.domain.box_outside(lower, upper), "the parameter box")

    def _report(self, problems: list[str], what: str) -> None:
        if not problems:
            return
        msg = (
            f"Surrogate domain: {what}: " + "; ".join(problems) + ". The surrogate was "
            "trained only inside that box; narrow the priors, use `bn.ExactSolver()`, or "
            "train a surrogate on a wider domain."
        )
        if self.on_domain_error == "warn":
            warnings.warn(msg, DomainWarning, stacklevel=4)
        else:
            raise ValueError(msg)

    def observables(self, chain: SpinChain, grid: TimeGrid) -> Traces:
        theta = jnp.concatenate([chain.offsets_hz, chain.j_hz[None]])
        y = self.net(theta)
        return Traces(mx=y[0], my=y[1], iz1=y[2], grid=grid)

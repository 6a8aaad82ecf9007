"""The interface every forward model implements."""

import abc
from typing import ClassVar

import equinox as eqx

from ._grid import TimeGrid
from ._system import System
from ._traces import Traces


class AbstractSolver(eqx.Module):
    """A forward model: a spin system (a `SpinChain` or a `SpinSystem`) and a time grid in,
    `Traces` out.

    Concrete solvers implement `observables`, which returns the traces *without* the
    phenomenological $T_2$ decay; `simulate` applies that in one place for every solver.
    A solver is an immutable `eqx.Module`, so it can be passed through `jax.jit`.
    """

    #: Whether `check` looks at the parameter values and not only at the chain's length
    #: and the grid. `simulate_batch` then checks every chain, else only the first.
    check_values: ClassVar[bool] = True

    #: Whether the traces are an approximation of the exact ones (a surrogate): then
    #: `sample_posterior` corrects its posterior with the exact solver by default.
    approximate: ClassVar[bool] = False

    @abc.abstractmethod
    def observables(self, chain: System, grid: TimeGrid) -> Traces:
        """The traces `mx`, `my`, `iz1` of `chain` on `grid`, without $T_2$ decay."""

    def check(self, chain: System, grid: TimeGrid) -> None:
        """Raise `ValueError` if this solver cannot handle `chain` on `grid`."""

    def check_box(self, lower, upper, *, per_bond: bool = False) -> None:
        """Raise `ValueError` if this solver cannot serve every chain whose parameters lie
        in the box `[lower, upper]`: the offsets of the N spins, then J (N - 1 couplings
        with `per_bond`), in Hz; an entry with `lower == upper` is a fixed value.

        Inference calls it before it starts, where `check` cannot look at traced values.
        The default accepts any box.
        """

    def eager(self, chain: System, grid: TimeGrid) -> Traces | None:
        """Traces computed outside `jit`, or `None` to run `observables` under `jit`.

        Called by `simulate` (after `check` and `prepare`) on the values it was given;
        a solver may answer here when eager code does better, such as the exact
        solver's bounded-memory path for long chains. The default is `None`.
        """
        return None

    def prepare(self, chain: System, grid: TimeGrid) -> "AbstractSolver":
        """Return the solver to run, specialised with static facts about `chain`.

        Called outside `jit`, on the values `simulate` was given; the default is `self`.
        """
        return self

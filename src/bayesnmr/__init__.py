"""bayesnmr: fast, differentiable NMR spin dynamics, surrogates and Bayesian inference."""

from ._physics._exact import ExactSolver as ExactSolver
from ._physics._grid import TimeGrid as TimeGrid
from ._physics._liouville import DiffraxSolver as DiffraxSolver
from ._physics._liouville import LindbladRelaxation as LindbladRelaxation
from ._physics._simulate import simulate as simulate
from ._physics._solver import AbstractSolver as AbstractSolver
from ._physics._system import SpinChain as SpinChain
from ._physics._traces import Traces as Traces
from ._physics._typicality import TypicalitySolver as TypicalitySolver
from ._plots import plot_traces as plot_traces

__version__ = "0.1.0"

"""bayesnmr: fast, differentiable NMR spin dynamics, surrogates and Bayesian inference."""

from importlib.metadata import version as _version

from ._inference._data import Dataset as Dataset
from ._inference._data import load_dataset as load_dataset
from ._inference._data import peak_offsets as peak_offsets
from ._inference._data import save_dataset as save_dataset
from ._inference._data import synthesize as synthesize
from ._inference._diagnose import ConvergenceWarning as ConvergenceWarning
from ._inference._diagnose import MultimodalWarning as MultimodalWarning
from ._inference._diagnose import diagnose as diagnose
from ._inference._diagnose import format_summary as format_summary
from ._inference._fit import FitResult as FitResult
from ._inference._fit import fit as fit
from ._inference._model import Priors as Priors
from ._inference._model import chain_model as chain_model
from ._inference._model_error import surrogate_error as surrogate_error
from ._inference._modes import Mode as Mode
from ._inference._nuts import load_posterior as load_posterior
from ._inference._nuts import sample_posterior as sample_posterior
from ._inference._nuts import save_posterior as save_posterior
from ._inference._sampler import NUTS as NUTS
from ._inference._sampler import use_cpu_cores as use_cpu_cores
from ._inference._sbc import calibrate as calibrate
from ._inference._sbc_result import SBCResult as SBCResult
from ._io import save_figure as save_figure
from ._io import write_json as write_json
from ._physics._exact import ExactSolver as ExactSolver
from ._physics._grid import TimeGrid as TimeGrid
from ._physics._liouville import DiffraxSolver as DiffraxSolver
from ._physics._liouville import LindbladRelaxation as LindbladRelaxation
from ._physics._simulate import simulate as simulate
from ._physics._simulate import simulate_batch as simulate_batch
from ._physics._solver import AbstractSolver as AbstractSolver
from ._physics._system import SpinChain as SpinChain
from ._physics._traces import Traces as Traces
from ._physics._typicality import TypicalitySolver as TypicalitySolver
from ._plots import plot_posterior as plot_posterior
from ._plots import plot_predictive as plot_predictive
from ._plots import plot_stability as plot_stability
from ._plots import plot_traces as plot_traces
from ._surrogate._data import DataSpec as DataSpec
from ._surrogate._data import generate_data as generate_data
from ._surrogate._data import load_training_data as load_training_data
from ._surrogate._domain import Domain as Domain
from ._surrogate._evaluate import evaluate_surrogate as evaluate_surrogate
from ._surrogate._evaluate import held_out as held_out
from ._surrogate._files import load_surrogate as load_surrogate
from ._surrogate._files import save_surrogate as save_surrogate
from ._surrogate._files import untrained_surrogate as untrained_surrogate
from ._surrogate._local import train_local_surrogate as train_local_surrogate
from ._surrogate._solver import DomainWarning as DomainWarning
from ._surrogate._solver import Surrogate as Surrogate
from ._surrogate._train import TrainConfig as TrainConfig
from ._surrogate._train import train_surrogate as train_surrogate

__version__ = _version("bayesnmr")

"""The NumPyro model of a spin chain, with any forward model."""

import dataclasses
import warnings

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from .._physics._grid import TimeGrid
from .._physics._simulate import simulate
from .._physics._solver import AbstractSolver
from .._physics._system import SpinChain
from ._data import Dataset

DEFAULT_J_HZ = (0.0, 25.0)  #: the J box (Hz) when none is given


@dataclasses.dataclass(frozen=True)
class Priors:
    """Priors of a chain's parameters; any of them may be fixed to a known value.

    **Fields:**

    - `offsets_hz`: shape `(N, 2)`: a uniform box `[lo, hi]` in Hz for each offset.
      Boxes that separate the spins (from the spectrum's peaks, say) also pick one of
      the mirror-image modes of a FID-only posterior.
    - `j_hz`: `(lo, hi)` for one coupling on every bond, or shape `(N - 1, 2)` for one
      coupling per bond.
    - `sigma_scale`: the scale of the half-normal prior on the noise $\\sigma$.
    - `fixed`: known values that are not sampled: any of `offsets_hz` (an array of N),
      `j_hz` and `sigma`.
    """

    offsets_hz: np.ndarray
    j_hz: np.ndarray = dataclasses.field(default_factory=lambda: np.array(DEFAULT_J_HZ))
    sigma_scale: float = 0.1
    fixed: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        off = np.asarray(self.offsets_hz, np.float64)
        if off.ndim != 2 or off.shape[1] != 2 or off.shape[0] < 1:
            raise ValueError(
                f"Priors: `offsets_hz` must have shape (N, 2) (a [lo, hi] box per spin), "
                f"but has shape {off.shape}."
            )
        j = np.asarray(self.j_hz, np.float64)
        n = off.shape[0]
        if not (j.shape == (2,) or j.shape == (n - 1, 2)):
            raise ValueError(
                f"Priors: `j_hz` must be (lo, hi) or have shape ({n - 1}, 2), but has shape "
                f"{j.shape}."
            )
        for name, box in (("offsets_hz", off), ("j_hz", j)):
            if not np.all(np.isfinite(box)) or np.any(box[..., 1] <= box[..., 0]):
                raise ValueError(f"Priors: every `{name}` box needs finite lo < hi, got {box}.")
        if not self.sigma_scale > 0:
            raise ValueError(f"Priors: `sigma_scale` must be positive, got {self.sigma_scale}.")
        unknown = set(self.fixed) - {"offsets_hz", "j_hz", "sigma"}
        if unknown:
            raise ValueError(
                f"Priors: cannot fix {sorted(unknown)}; `fixed` takes offsets_hz, j_hz, sigma."
            )
        object.__setattr__(self, "offsets_hz", off)
        object.__setattr__(self, "j_hz", j)

    @property
    def n_spins(self) -> int:
        return self.offsets_hz.shape[0]

    @property
    def per_bond(self) -> bool:
        return self.j_hz.ndim == 2

    @classmethod
    def around(
        cls,
        offsets_hz,
        width_hz: float = 10.0,
        j_hz=DEFAULT_J_HZ,
        sigma_scale: float = 0.1,
        fixed: dict | None = None,
    ) -> "Priors":
        """Boxes of half-width `width_hz` around guessed offsets (spectrum peaks, say)."""
        off = np.asarray(offsets_hz, np.float64)
        return cls(
            np.stack([off - width_hz, off + width_hz], -1),
            np.asarray(j_hz),
            sigma_scale,
            fixed or {},
        )

    @classmethod
    def from_data(
        cls, data: Dataset, j_hz=DEFAULT_J_HZ, sigma_scale: float = 0.1, fixed: dict | None = None
    ) -> "Priors":
        """What the data alone allow: every offset anywhere in the spectral window
        $[-1/2\\Delta t, 1/2\\Delta t)$ of the data's grid, J in `j_hz`, for `data.n_spins`
        spins. The default of `fit` and `sample_posterior`."""
        nyquist = 0.5 / data.grid.dt
        box = np.tile([-nyquist, nyquist], (data.n_spins, 1))
        return cls(box, np.asarray(j_hz, np.float64), sigma_scale, fixed or {})

    def free_names(self) -> list[str]:
        return [k for k in ("offsets_hz", "j_hz", "sigma") if k not in self.fixed]

    def box(self) -> tuple[np.ndarray, np.ndarray]:
        """The parameter box `(lower, upper)`: the offsets of every spin, then J (one, or
        N - 1 per bond), in Hz; a fixed value is an interval of zero width."""
        n_j = self.n_spins - 1 if self.per_bond else 1
        if "offsets_hz" in self.fixed:
            off = np.broadcast_to(np.asarray(self.fixed["offsets_hz"], float), (self.n_spins,))
            lo_o = hi_o = off
        else:
            lo_o, hi_o = self.offsets_hz[:, 0], self.offsets_hz[:, 1]
        if "j_hz" in self.fixed:
            lo_j = hi_j = np.broadcast_to(np.asarray(self.fixed["j_hz"], float), (n_j,))
        else:
            jb = self.j_hz.reshape(-1, 2)
            lo_j, hi_j = jb[:, 0], jb[:, 1]
        return np.r_[lo_o, lo_j], np.r_[hi_o, hi_j]

    def for_solver(self, solver: AbstractSolver | None) -> "Priors":
        """These priors, checked against `solver` (`check_domain`).

        The one change made: a surrogate trained on a narrower J range than the default
        J box `DEFAULT_J_HZ` (the shipped ones: 0-20 Hz) would refuse that box, though the
        user never chose it; then the default box is narrowed to the surrogate's range,
        with a warning. Any box the user chose is checked as it is.
        """
        from .._surrogate._solver import Surrogate

        out = self
        if (
            isinstance(solver, Surrogate)
            and "j_hz" not in self.fixed
            and np.array_equal(self.j_hz, DEFAULT_J_HZ)
        ):
            dlo, dhi = solver.domain.j_hz
            lo, hi = max(DEFAULT_J_HZ[0], dlo), min(DEFAULT_J_HZ[1], dhi)
            if (lo, hi) != DEFAULT_J_HZ and lo < hi:
                warnings.warn(
                    f"The default J box [{DEFAULT_J_HZ[0]:g}, {DEFAULT_J_HZ[1]:g}] Hz is "
                    f"narrowed to [{lo:g}, {hi:g}] Hz, the surrogate's training range. Pass "
                    "`j_hz` to the priors to choose the box yourself.",
                    UserWarning,
                    stacklevel=3,
                )
                out = dataclasses.replace(self, j_hz=np.array([lo, hi]))
        out.check_domain(solver)
        return out

    def check_domain(self, solver: AbstractSolver | None) -> None:
        """Refuse a solver that cannot serve every chain inside these boxes (a surrogate
        whose training domain they reach outside)."""
        if isinstance(solver, AbstractSolver):
            solver.check_box(*self.box(), per_bond=self.per_bond)


def chain_model(
    grid: TimeGrid,
    priors: Priors,
    solver: AbstractSolver | None = None,
    mx=None,
    my=None,
    iz1=None,
    observe_iz1: bool = True,
    marginal_sigma: bool = False,
    model_error=None,
):
    """The NumPyro model: uniform boxes on offsets and J, half-normal on $\\sigma$,
    Gaussian likelihood on `mx`, `my`, and `iz1` when `observe_iz1`.

    `solver` is the forward model (the exact solver by default, or a surrogate).
    `model_error` (shape `(3, T)`: mx, my, iz1) is the forward model's own error as a
    noise level, from `bn.surrogate_error`: the likelihood's standard deviation becomes
    $\\sqrt{\\sigma^2 + e(t)^2}$. It needs $\\sigma$ fixed or sampled (not integrated out).

    With `marginal_sigma=True` (and $\\sigma$ not fixed) the noise is integrated out
    analytically under the Jeffreys prior $p(\\sigma) \\propto 1/\\sigma$: the likelihood
    becomes $\\mathrm{RSS}^{-n/2}$, with RSS the residual sum of squares over the $n$
    observed points, recorded as the deterministic site `rss`. Then
    $\\sigma^2 \\mid \\theta \\sim \\mathrm{InvGamma}(n/2, \\mathrm{RSS}/2)$ exactly
    (`sample_posterior` draws it).
    """
    f = priors.fixed
    if "offsets_hz" in f:
        nu = jnp.asarray(f["offsets_hz"], dtype=float)
    else:
        box = priors.offsets_hz
        nu = numpyro.sample("offsets_hz", dist.Uniform(box[:, 0], box[:, 1]).to_event(1))
    if "j_hz" in f:
        j = jnp.asarray(f["j_hz"], dtype=float)
    elif priors.per_bond:
        j = numpyro.sample("j_hz", dist.Uniform(priors.j_hz[:, 0], priors.j_hz[:, 1]).to_event(1))
    else:
        j = numpyro.sample("j_hz", dist.Uniform(priors.j_hz[0], priors.j_hz[1]))
    tr = simulate(SpinChain(nu, j), grid, solver)
    if marginal_sigma and "sigma" not in f and model_error is None:
        pairs = [(tr.mx, mx), (tr.my, my)] + ([(tr.iz1, iz1)] if observe_iz1 else [])
        rss = numpyro.deterministic("rss", sum(jnp.sum((m - o) ** 2) for m, o in pairs))
        numpyro.factor("likelihood", -0.5 * len(pairs) * grid.n * jnp.log(rss))
        return
    if "sigma" in f:
        sigma = jnp.asarray(f["sigma"], dtype=float)
    else:
        sigma = numpyro.sample("sigma", dist.HalfNormal(priors.sigma_scale))
    if model_error is None:
        sd = (sigma, sigma, sigma)
    else:
        sd = tuple(jnp.sqrt(sigma**2 + model_error[i] ** 2) for i in range(3))
    numpyro.sample("mx", dist.Normal(tr.mx, sd[0]).to_event(1), obs=mx)
    numpyro.sample("my", dist.Normal(tr.my, sd[1]).to_event(1), obs=my)
    if observe_iz1:
        numpyro.sample("iz1", dist.Normal(tr.iz1, sd[2]).to_event(1), obs=iz1)


def check_model_error(model_error, grid: TimeGrid):
    """`model_error` as a `(3, T)` array of finite non-negative numbers, or None."""
    if model_error is None:
        return None
    e = np.asarray(model_error, np.float64)
    if e.shape != (3, grid.n) or not np.all(np.isfinite(e)) or np.any(e < 0):
        raise ValueError(
            f"Argument `model_error` must be finite, non-negative and of shape (3, {grid.n}) "
            f"(mx, my, iz1 on the data's grid), got shape {e.shape}; "
            "`bn.surrogate_error(surrogate, priors)` makes one."
        )
    return jnp.asarray(e)


def check_chain_data(data: Dataset, priors: Priors) -> None:
    """Refuse data the chain model cannot explain with these priors."""
    if priors.n_spins != data.n_spins:
        raise ValueError(
            f"The priors are for {priors.n_spins} spins but the data for {data.n_spins}."
        )
    if data.iz1 is not None and data.iz_spin != 1:
        raise ValueError(
            f"These data's `iz1` is the polarisation of spin {data.iz_spin}, but the chain "
            "model observes spin 1's. Fitting a network of couplings is not available yet; "
            "fit the FID alone (a Dataset with `iz1=None`)."
        )


def model_kwargs(data: Dataset, priors: Priors, solver, model_error=None) -> dict:
    check_chain_data(data, priors)
    priors.check_domain(solver)
    return {
        "model_error": check_model_error(model_error, data.grid),
        "grid": data.grid,
        "priors": priors,
        "solver": solver,
        "mx": jnp.asarray(data.mx),
        "my": jnp.asarray(data.my),
        "iz1": None if data.iz1 is None else jnp.asarray(data.iz1),
        "observe_iz1": data.iz1 is not None,
    }

"""Observed traces: synthetic data sets, and NetCDF files of them."""

import dataclasses
import os
from pathlib import Path

import numpy as np

from .._io import atomic_path
from .._physics._grid import TimeGrid
from .._physics._simulate import simulate
from .._physics._solver import AbstractSolver
from .._physics._system import SpinChain

FORMAT = "bayesnmr-traces-1"


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Observed traces on a time grid, with the true parameters when they are known.

    **Fields:**

    - `grid`: the `TimeGrid` of the samples.
    - `mx`, `my`: the observed FID, normalised so that $M_+(0) = 1$.
    - `iz1`: the observed local polarisation of spin 1, or `None` if not measured.
    - `n_spins`: the number of spins of the chain to fit.
    - `truth`: the true parameters for synthetic data (`offsets_hz`, `j_hz`, `sigma`,
      `t2_s`), else `None`. For a `SpinSystem`, `j_hz` is its `(N, N)` matrix.
    - `iz_spin`: the spin (counted from 1) whose polarisation `iz1` is (default 1).
    """

    grid: TimeGrid
    mx: np.ndarray
    my: np.ndarray
    iz1: np.ndarray | None
    n_spins: int
    truth: dict | None = None
    iz_spin: int = 1

    def __post_init__(self):
        n = self.grid.n
        for name in ("mx", "my", "iz1"):
            value = getattr(self, name)
            if value is None and name == "iz1":
                continue
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape != (n,):
                raise ValueError(
                    f"Data `{name}` must have one value per time point, shape ({n},), "
                    f"but has shape {arr.shape}."
                )
            if not np.all(np.isfinite(arr)):
                bad = np.flatnonzero(~np.isfinite(arr))[:5].tolist()
                raise ValueError(
                    f"Data `{name}` has non-finite values (first at indices {bad}); remove "
                    "or interpolate them before fitting."
                )
            object.__setattr__(self, name, arr)
        if not isinstance(self.n_spins, int | np.integer) or self.n_spins < 1:
            raise ValueError(f"`n_spins` must be a positive int, got {self.n_spins!r}.")
        if (
            isinstance(self.iz_spin, bool)
            or not isinstance(self.iz_spin, int | np.integer)
            or not 1 <= self.iz_spin <= self.n_spins
        ):
            raise ValueError(
                f"`iz_spin` must be a spin number from 1 to {self.n_spins}, got {self.iz_spin!r}."
            )


def synthesize(
    chain: SpinChain,
    grid: TimeGrid,
    sigma: float,
    seed: int = 0,
    *,
    observe_iz1: bool = True,
    solver: AbstractSolver | None = None,
) -> Dataset:
    """Simulate `chain` and add independent Gaussian noise of standard deviation `sigma`.

    The noise model of the conventions: the same $\\sigma$ on `mx`, `my` and `iz1`, in
    normalised units.
    """
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"Argument `sigma` must be finite and >= 0, got {sigma!r}.")
    tr = simulate(chain, grid, solver)
    noise = np.random.default_rng(seed).normal(size=(3, grid.n)) * sigma
    truth = {
        "offsets_hz": np.asarray(chain.offsets_hz, np.float64).tolist(),
        "j_hz": np.asarray(chain.j_hz, np.float64).tolist(),
        "sigma": float(sigma),
        "t2_s": None if chain.t2_s is None else float(chain.t2_s),
    }
    return Dataset(
        grid=grid,
        mx=np.asarray(tr.mx) + noise[0],
        my=np.asarray(tr.my) + noise[1],
        iz1=np.asarray(tr.iz1) + noise[2] if observe_iz1 else None,
        n_spins=chain.n_spins,
        truth=truth,
        iz_spin=chain.iz_index + 1,
    )


def save_dataset(data: Dataset, path: str | os.PathLike) -> Path:
    """Write a `Dataset` to NetCDF (atomically: the file is complete or absent).

    The format: variables `mx`, `my` and optionally `iz1` on a dimension `time` (with
    the times in seconds as its coordinate), attributes `format`, `n_spins`, `dt`, and
    for synthetic data `true_offsets_hz`, `true_j_hz`, `true_sigma` (and `true_t2_s`).
    """
    import xarray as xr

    variables = {"mx": ("time", data.mx), "my": ("time", data.my)}
    if data.iz1 is not None:
        variables["iz1"] = ("time", data.iz1)
    attrs = {"format": FORMAT, "n_spins": int(data.n_spins), "dt": data.grid.dt}
    if data.iz_spin != 1:
        attrs["iz_spin"] = int(data.iz_spin)
    if data.truth:
        attrs["true_offsets_hz"] = np.asarray(data.truth["offsets_hz"], np.float64)
        j = np.asarray(data.truth["j_hz"], np.float64)
        if j.ndim == 2:  # a network's coupling matrix, row by row
            attrs["true_j_matrix_hz"] = j.reshape(-1)
        else:
            attrs["true_j_hz"] = np.atleast_1d(j)
        attrs["true_sigma"] = float(data.truth["sigma"])
        if data.truth.get("t2_s") is not None:
            attrs["true_t2_s"] = float(data.truth["t2_s"])
    ds = xr.Dataset(variables, coords={"time": data.grid.times}, attrs=attrs)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")
    return Path(path)


def load_dataset(path: str | os.PathLike, n_spins: int | None = None) -> Dataset:
    """Read traces from NetCDF: a file from `save_dataset`, or a user's own file.

    A user's file needs variables `mx` and `my` (and optionally `iz1`) on one dimension
    whose coordinate holds uniformly spaced times from 0 in seconds; pass `n_spins` if
    the file has no `n_spins` attribute.
    """
    import xarray as xr

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No data file at {str(path)!r}.")
    try:
        ds = xr.load_dataset(path, engine="h5netcdf")
    except Exception as err:  # any reader failure means the file is unusable
        raise ValueError(
            f"Cannot read {str(path)!r} as NetCDF ({type(err).__name__}: {err}). Is it a "
            "complete file written by `bayesnmr simulate` or in the documented format?"
        ) from None
    missing = [v for v in ("mx", "my") if v not in ds]
    if missing:
        raise ValueError(f"{str(path)!r} lacks the variable(s) {missing}; it needs `mx` and `my`.")
    (dim,) = ds["mx"].dims
    times = np.asarray(ds[dim].values if dim in ds.coords else [], dtype=np.float64)
    if times.size != ds.sizes[dim] or times.size < 2:
        raise ValueError(f"{str(path)!r}: the dimension {dim!r} needs a coordinate of times (s).")
    dt = float(times[1] - times[0])
    if abs(times[0]) > 1e-12 or not np.allclose(np.diff(times), dt, rtol=1e-6, atol=0):
        raise ValueError(
            f"{str(path)!r}: the times must be uniform and start at 0 (t_k = k dt), as "
            "bayesnmr's TimeGrid; resample the data first."
        )
    n = int(n_spins) if n_spins is not None else int(ds.attrs.get("n_spins", 0))
    if n < 1:
        raise ValueError(f"{str(path)!r} has no `n_spins` attribute; pass `n_spins`.")
    truth = None
    if "true_offsets_hz" in ds.attrs:
        if "true_j_matrix_hz" in ds.attrs:
            j = np.asarray(ds.attrs["true_j_matrix_hz"], float).reshape(n, n).tolist()
        else:
            j = np.atleast_1d(ds.attrs["true_j_hz"]).astype(float)
            j = float(j[0]) if j.size == 1 else j.tolist()
        truth = {
            "offsets_hz": np.atleast_1d(ds.attrs["true_offsets_hz"]).astype(float).tolist(),
            "j_hz": j,
            "sigma": float(ds.attrs.get("true_sigma", np.nan)),
            "t2_s": float(ds.attrs["true_t2_s"]) if "true_t2_s" in ds.attrs else None,
        }
    return Dataset(
        grid=TimeGrid(times.size, dt),
        mx=ds["mx"].values,
        my=ds["my"].values,
        iz1=ds["iz1"].values if "iz1" in ds else None,
        n_spins=n,
        truth=truth,
        iz_spin=int(ds.attrs.get("iz_spin", 1)),
    )


def peak_offsets(data: Dataset, n_peaks: int, zero_fill: int = 8) -> np.ndarray:
    """The `n_peaks` strongest peaks of the data's spectrum in Hz, ascending.

    A start for fits and a guide for priors: with weak coupling, each spin's multiplet
    sits near its offset. Peaks closer than 3 points apart are merged.
    """
    fid = (data.mx + 1j * data.my) * np.exp(-data.grid.times / (data.grid.duration / 3))
    fid[0] *= 0.5
    n_fft = zero_fill * data.grid.n
    spec = np.abs(np.fft.fftshift(np.fft.fft(fid, n_fft)))
    freqs = np.fft.fftshift(np.fft.fftfreq(n_fft, data.grid.dt))
    is_peak = (spec > np.roll(spec, 1)) & (spec >= np.roll(spec, -1))
    idx = np.flatnonzero(is_peak)
    idx = idx[np.argsort(spec[idx])[::-1]]
    chosen: list[int] = []
    for i in idx:
        if all(abs(i - c) > 3 * zero_fill for c in chosen):
            chosen.append(int(i))
        if len(chosen) == n_peaks:
            break
    while len(chosen) < n_peaks:
        chosen.append(int(idx[0]) if idx.size else n_fft // 2)
    return np.sort(freqs[chosen])

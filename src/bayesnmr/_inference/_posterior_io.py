"""Posterior DataTrees on disk: written atomically, read back with a clear error."""

import os
from pathlib import Path

from .._io import atomic_path


def save_posterior(dt, path: str | os.PathLike) -> Path:
    """Write a posterior DataTree to NetCDF, atomically."""
    with atomic_path(path) as tmp:
        dt.to_netcdf(tmp, engine="h5netcdf")
    return Path(path)


def load_posterior(path: str | os.PathLike):
    """Read a posterior written by `save_posterior`, with a clear error if it cannot."""
    import xarray as xr

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No posterior file at {str(path)!r}.")
    try:
        return xr.open_datatree(path, engine="h5netcdf").load()
    except Exception as err:
        raise ValueError(f"Cannot read {str(path)!r} as a posterior NetCDF: {err}") from None

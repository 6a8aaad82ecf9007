"""Training data: exact trajectories in shards that are written atomically and resumable.

A job is a `DataSpec` (chain length, grid, domain, sample count, shard size, seed) and a
folder. The folder holds `manifest.json` (the spec, the solver and the versions) and
`shard-00000.npz`, `shard-00001.npz`, ... Shard `i` draws its parameters from a NumPy
generator seeded by `(seed, i)`, so any shard can be made alone, by any process or
machine, and always holds the same data. A shard file is complete or absent: an
interrupted job rerun with the same command makes only the missing shards.
"""

import dataclasses
import json
import os
import platform
from pathlib import Path

import jax
import numpy as np
from tqdm.auto import tqdm

from .._io import atomic_path
from .._physics._exact import ExactSolver
from .._physics._grid import TimeGrid
from .._physics._simulate import simulate_batch
from ._domain import Domain


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What a data-generation job makes.

    **Fields:** `domain` (the `Domain`), `grid` (the `TimeGrid`), `n_samples`,
    `shard_size` (samples per shard, default 1000), `seed` (default 0).
    """

    domain: Domain
    grid: TimeGrid
    n_samples: int
    shard_size: int = 1000
    seed: int = 0

    def __post_init__(self):
        for name in ("n_samples", "shard_size", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < (name != "seed"):
                raise ValueError(f"Argument `{name}` must be a positive integer, got {v!r}.")

    @property
    def n_shards(self) -> int:
        return -(-self.n_samples // self.shard_size)

    def shard_len(self, i: int) -> int:
        return min(self.shard_size, self.n_samples - i * self.shard_size)

    def thetas(self, i: int) -> np.ndarray:
        """The parameters of shard `i`, shape `(shard_len(i), N + 1)`, float64."""
        rng = np.random.default_rng([self.seed, i])
        lo, hi = self.domain.lower, self.domain.upper
        return lo + (hi - lo) * rng.random((self.shard_len(i), lo.size))

    def to_dict(self) -> dict:
        return {
            "domain": self.domain.to_dict(),
            "grid": {"n": self.grid.n, "dt": self.grid.dt},
            "n_samples": self.n_samples,
            "shard_size": self.shard_size,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "DataSpec":
        return cls(
            Domain.from_dict(d["domain"]),
            TimeGrid(int(d["grid"]["n"]), float(d["grid"]["dt"])),
            int(d["n_samples"]),
            int(d["shard_size"]),
            int(d["seed"]),
        )


def shard_path(folder: str | os.PathLike, i: int) -> Path:
    return Path(folder) / f"shard-{i:05d}.npz"


def _versions() -> dict:
    from importlib.metadata import version

    __version__ = version("bayesnmr")
    return {"bayesnmr": __version__, "jax": jax.__version__, "python": platform.python_version()}


def _write_manifest(folder: Path, spec: DataSpec) -> None:
    manifest = folder / "manifest.json"
    want = spec.to_dict()
    if manifest.exists():
        have = json.loads(manifest.read_text())
        if have.get("spec") != json.loads(json.dumps(want)):
            raise ValueError(
                f"{folder} already holds a different generation job ({have.get('spec')}); "
                "choose another output folder, or repeat that job's exact arguments to resume it."
            )
        return
    record = {"spec": want, "solver": "ExactSolver", "x64": bool(jax.config.jax_enable_x64)}
    record["versions"] = _versions()
    with atomic_path(manifest) as tmp:
        tmp.write_text(json.dumps(record, indent=1))


def is_complete(folder: str | os.PathLike, spec: DataSpec, i: int) -> bool:
    """Whether shard `i` exists and holds what `spec` asks for."""
    path = shard_path(folder, i)
    if not path.exists():
        return False
    try:
        with np.load(path) as f:
            return f["traces"].shape == (spec.shard_len(i), 3, spec.grid.n)
    except (OSError, ValueError, KeyError):
        return False


def exact_traces(
    thetas, grid: TimeGrid, batch: int = 256, progress_bar: bool = False
) -> np.ndarray:
    """Exact `(n, 3, T)` traces of uniform-J chains `thetas` (shape `(n, N + 1)`)."""
    thetas = np.asarray(thetas)
    n = thetas.shape[1] - 1
    out = []
    for start in tqdm(
        range(0, len(thetas), batch), disable=not progress_bar, leave=False, unit="batch"
    ):
        chunk = thetas[start : start + batch]
        pad = batch - len(chunk)
        # Padded to one shape, so the last batch reuses the compiled solve.
        padded = np.concatenate([chunk, np.repeat(chunk[-1:], pad, 0)]) if pad else chunk
        traces = simulate_batch(padded[:, :n], padded[:, n], grid, ExactSolver())
        out.append(np.asarray(traces.as_array())[: len(chunk)])
    return np.concatenate(out) if out else np.zeros((0, 3, grid.n))


def write_shard(folder: str | os.PathLike, spec: DataSpec, i: int, batch: int = 256) -> Path:
    """Make shard `i` of `spec` in `folder` (atomically); skip it if already complete."""
    path = shard_path(folder, i)
    if is_complete(folder, spec, i):
        return path
    thetas = spec.thetas(i)
    traces = exact_traces(thetas, spec.grid, batch)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, theta=thetas, traces=traces.astype(np.float32), index=i)
    return path


def _dask_task(folder: str, spec: dict, i: int, batch: int) -> str:
    return str(write_shard(folder, DataSpec.from_dict(spec), i, batch))


def generate_data(
    folder: str | os.PathLike,
    spec: DataSpec,
    shards=None,
    batch: int = 256,
    progress_bar: bool = True,
    scheduler: str | None = None,
) -> list[Path]:
    """Make the shards of `spec` in `folder` with the exact solver; resumable.

    **Arguments:**

    - `folder`: the output folder (created if needed). A folder holding another job is
      refused.
    - `spec`: the `DataSpec`.
    - `shards`: the shard indices to make (default: all). Give disjoint ranges to
      several processes or machines to share one job.
    - `batch`: trajectories per vmapped exact solve.
    - `progress_bar`: show a progress bar.
    - `scheduler`: `None` to run here; `"local"` for a Dask `LocalCluster` on this
      machine; or a Dask scheduler address such as `"tcp://10.0.0.5:8786"`. Dask is an
      optional extra: `pip install 'bayesnmr[dask]'`.

    **Returns:** the paths of the requested shards.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_manifest(folder, spec)
    indices = range(spec.n_shards) if shards is None else list(shards)
    bad = [i for i in indices if not 0 <= int(i) < spec.n_shards]
    if bad:
        raise ValueError(
            f"Argument `shards`: indices {bad} are out of range; this job has shards "
            f"0 to {spec.n_shards - 1}."
        )
    todo = [int(i) for i in indices if not is_complete(folder, spec, int(i))]
    bar = tqdm(
        total=len(indices),
        initial=len(indices) - len(todo),
        disable=not progress_bar,
        unit="shard",
        desc="exact trajectories",
    )
    with bar:
        if scheduler is None:
            for i in todo:
                write_shard(folder, spec, i, batch)
                bar.update()
        else:
            _run_dask(folder, spec, todo, batch, scheduler, bar)
    return [shard_path(folder, int(i)) for i in indices]


def _run_dask(folder, spec, todo, batch, scheduler, bar):
    from .._parallel import dask_client, with_precision

    with dask_client(scheduler) as client:
        from dask.distributed import as_completed

        futures = client.map(
            with_precision(_dask_task),
            [str(folder)] * len(todo),
            [spec.to_dict()] * len(todo),
            todo,
            [batch] * len(todo),
            pure=False,
        )
        for fut in as_completed(futures):
            fut.result()
            bar.update()


def load_training_data(folder: str | os.PathLike) -> tuple[DataSpec, np.ndarray, np.ndarray]:
    """The spec, parameters `(n, N + 1)` and traces `(n, 3, T)` of a finished job.

    Raises `ValueError` naming the missing shards if the job is not finished.
    """
    folder = Path(folder)
    manifest = folder / "manifest.json"
    if not manifest.exists():
        raise ValueError(
            f"{folder} holds no generated data (no manifest.json); run `bayesnmr generate` first."
        )
    spec = DataSpec.from_dict(json.loads(manifest.read_text())["spec"])
    missing = [i for i in range(spec.n_shards) if not is_complete(folder, spec, i)]
    if missing:
        raise ValueError(
            f"{folder}: shards {missing[:10]}{' ...' if len(missing) > 10 else ''} of "
            f"{spec.n_shards} are missing or incomplete; rerun the same `generate` command "
            "to finish them."
        )
    thetas, traces = [], []
    for i in range(spec.n_shards):
        with np.load(shard_path(folder, i)) as f:
            thetas.append(f["theta"])
            traces.append(f["traces"])
    return spec, np.concatenate(thetas), np.concatenate(traces)

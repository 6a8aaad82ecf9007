"""Threads for compiled work on a CPU's cores; optional Dask clusters for work that
outgrows one process (data, calibration)."""

import contextlib
import functools
import os
from collections.abc import Iterator


@functools.cache
def thread_pool():
    """The process's pool of threads for compiled JAX calls that run side by side on a
    CPU's cores (JAX lets go of Python while a compiled function runs): one thread per
    core, at least two."""
    from concurrent.futures import ThreadPoolExecutor

    from ._physics._lapack import _cores

    return ThreadPoolExecutor(max(2, _cores()), thread_name_prefix="bayesnmr")


@contextlib.contextmanager
def dask_client(
    scheduler: str, workers: int | None = 1, processes: bool = False
) -> Iterator[object]:
    """A Dask client: `"local"` starts a `LocalCluster` of `workers` single-threaded
    workers (`None`: one per core), threads of this process or separate `processes` (and
    closes it afterwards); anything else is a scheduler's address."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ValueError(
            "Argument `scheduler` needs Dask: install the extra with "
            "`pip install 'bayesnmr[dask]'` (or `uv sync --extra dask`)."
        ) from None
    if scheduler == "local":
        cluster = LocalCluster(
            n_workers=(os.cpu_count() or 1) if workers is None else max(1, workers),
            threads_per_worker=1,
            processes=processes,
            dashboard_address=":0",  # any free port: never clash with another cluster
        )
        client = Client(cluster)
    else:
        cluster, client = None, Client(scheduler)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def with_precision(fn):
    """`fn`, to run on a Dask worker in this process's JAX precision.

    A worker process starts with JAX's default (float32) whatever its caller chose; the
    library never chooses for the caller (`jax_enable_x64` is the caller's setting), so
    the task sets the caller's value on the worker before it runs.
    """
    import jax

    return functools.partial(_with_x64, fn, bool(jax.config.jax_enable_x64))


def _with_x64(fn, x64: bool, *args):
    import jax

    if bool(jax.config.jax_enable_x64) != x64:
        jax.config.update("jax_enable_x64", x64)
    return fn(*args)

"""Optional Dask clusters for work that outgrows one process (data, calibration)."""

import contextlib
import os
from collections.abc import Iterator


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

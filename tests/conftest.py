import os
from pathlib import Path

import jax
import numpy as np
import pytest
from jaxtyping import install_import_hook

# Runtime checking of the jaxtyping annotations (shapes and dtypes) of the modules that
# carry them, for the whole test run. The public constructors that validate user input
# themselves (TimeGrid, simulate, the solvers) are left to their own checks, so the
# bad-input tests still see the ValueError that names the argument and the fix.
with install_import_hook(
    [
        "bayesnmr._physics._spectral",
        "bayesnmr._physics._system",
        "bayesnmr._physics._traces",
        "bayesnmr._surrogate._nets",
        "bayesnmr._surrogate._local",
    ],
    "beartype.beartype",
):
    import bayesnmr  # noqa: F401  (imported here, under the hook)

# Physics accuracy needs float64: an explicit choice of the tests, not of the package.
jax.config.update("jax_enable_x64", True)
# JAX's persistent compilation cache: the xdist workers, and the modules after each of
# which compiled code is freed (below), share compiled functions through the disk instead
# of compiling them again (a fit of a 3-spin chain: 86-106 s cold, 29 s from the cache,
# measured under load on one core). A fresh clone starts with it empty.
_CACHE = os.environ.get(
    "BAYESNMR_TEST_JAX_CACHE", str(Path(__file__).resolve().parents[1] / ".jax_cache")
)
jax.config.update("jax_compilation_cache_dir", _CACHE)
os.environ.setdefault("BAYESNMR_JAX_CACHE", _CACHE)  # the CLI's cache: the same folder
# and the benchmarks' and examples' subprocesses (JAX reads these when it starts).
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
jax.config.update("jax_numpy_rank_promotion", "raise")

import matplotlib  # noqa: E402

matplotlib.use("Agg")


@pytest.fixture
def allow_rank_promotion():
    # NumPyro's initialisation and ArviZ's dimension inference broadcast by rank
    # promotion; bayesnmr's own code is checked strictly everywhere else.
    with jax.numpy_rank_promotion("allow"):
        yield


@pytest.fixture
def rng():
    return np.random.default_rng(20260125)


def random_chain(rng, n, per_bond=False, spread=100.0, jmax=20.0):
    import bayesnmr as bn

    offsets = rng.uniform(-spread, spread, n)
    j = rng.uniform(0.0, jmax, n - 1) if per_bond else rng.uniform(0.0, jmax)
    return bn.SpinChain(offsets, j)


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_code():
    # Each xdist worker runs many modules, and compiled code is never freed by itself: two
    # workers' caches together ran a 24 GiB machine out of memory inside XLA's compiler
    # (a segfault, then an abort, in two CI runs). Free them after every module.
    yield
    from bayesnmr._inference import _sampler

    _sampler._CACHE.clear()
    jax.clear_caches()

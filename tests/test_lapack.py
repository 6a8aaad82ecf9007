"""SciPy's LAPACK under XLA: half the cores per call on a CPU, every core in the streamed path."""

import jax
import numpy as np
import pytest

import bayesnmr as bn
from bayesnmr._physics import _lapack

from conftest import random_chain


def _threads():
    libs = _lapack._scipy_blas()
    if not libs:
        pytest.skip("threadpoolctl sees no BLAS shipped inside SciPy here")
    return {lib.get_num_threads() for lib in libs}


@pytest.fixture
def fresh(monkeypatch):
    """`serial_lapack` as if no exact solve had been traced; the thread count restored."""
    monkeypatch.setattr(_lapack, "_applied", None)
    with _lapack.lapack_threads(2):
        yield


def test_first_exact_trace_gives_scipy_lapack_half_the_cores(fresh, rng, monkeypatch):
    monkeypatch.delenv("BAYESNMR_LAPACK_THREADS", raising=False)
    assert _threads() == {2}
    jax.jit(lambda c: bn.simulate(c, bn.TimeGrid(n=20, dt=1e-3)).mx)(random_chain(rng, 3))
    assert _threads() == {max(1, _lapack._cores() // 2)}  # 1 on the 2-core machines


def test_half_of_sixteen_cores_is_eight(fresh, monkeypatch):
    monkeypatch.delenv("BAYESNMR_LAPACK_THREADS", raising=False)
    monkeypatch.setattr(_lapack, "_cores", lambda: 16)
    _lapack.serial_lapack()
    assert _threads() == {8}


def test_environment_sets_the_count(fresh, monkeypatch):
    monkeypatch.setenv("BAYESNMR_LAPACK_THREADS", "3")
    _lapack.serial_lapack()
    assert _threads() == {3}


@pytest.mark.parametrize("value", ["0", "two"])
def test_bad_environment_value_is_named(fresh, monkeypatch, value):
    monkeypatch.setenv("BAYESNMR_LAPACK_THREADS", value)
    for _ in range(2):  # not only the first time
        with pytest.raises(ValueError, match="BAYESNMR_LAPACK_THREADS must be a positive integer"):
            _lapack.serial_lapack()


def test_streamed_path_uses_every_core_and_restores(fresh, rng, monkeypatch):
    from bayesnmr._physics import _streamed

    seen = []
    real = _streamed.eigh_in_place

    def spy(h):
        seen.append(_threads())
        return real(h)

    monkeypatch.setattr(_streamed, "eigh_in_place", spy)
    with _lapack.lapack_threads(1):
        tr = bn.simulate(
            random_chain(rng, 4), bn.TimeGrid(n=20, dt=1e-3), bn.ExactSolver(stream_from=1)
        )
        assert _threads() == {1}
    assert np.isfinite(np.asarray(tr.mx)).all()
    assert seen and all(s == {_lapack._cores()} for s in seen)

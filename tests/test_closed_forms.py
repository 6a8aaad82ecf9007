"""Closed forms: a single spin and the two-spin AB system."""

import numpy as np
import pytest

import bayesnmr as bn

GRID = bn.TimeGrid(n=300, dt=1e-3)
SOLVERS = [bn.ExactSolver(), bn.DiffraxSolver()]
TOL = {bn.ExactSolver: 1e-12, bn.DiffraxSolver: 1e-7}


@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("nu", [0.0, 37.5, -80.0])
def test_single_spin(solver, nu):
    tr = bn.simulate(bn.SpinChain([nu]), GRID, solver=solver)
    t = GRID.times
    tol = TOL[type(solver)]
    np.testing.assert_allclose(tr.mx, np.cos(2 * np.pi * nu * t), atol=tol)
    np.testing.assert_allclose(tr.my, np.sin(2 * np.pi * nu * t), atol=tol)
    np.testing.assert_allclose(tr.iz1, 1.0, atol=tol)


def test_single_spin_t2_decay():
    tr = bn.simulate(bn.SpinChain([25.0], t2_s=0.05), GRID)
    t = GRID.times
    np.testing.assert_allclose(tr.mx, np.cos(2 * np.pi * 25 * t) * np.exp(-t / 0.05), atol=1e-12)
    np.testing.assert_allclose(tr.iz1, 1.0, atol=1e-12)


def test_positive_offset_is_positive_frequency():
    tr = bn.simulate(bn.SpinChain([50.0]), bn.TimeGrid(1000, 1e-3))
    assert tr.frequencies_hz[np.argmax(np.abs(tr.spectrum()))] == pytest.approx(50.0)


def ab_lines(nu1, nu2, j):
    """The four lines of an AB system: frequencies (Hz) and intensities (sum 1)."""
    mean, d = (nu1 + nu2) / 2, np.hypot(nu1 - nu2, j)
    freqs = np.array(
        [mean + (d + j) / 2, mean - (d + j) / 2, mean + (d - j) / 2, mean - (d - j) / 2]
    )
    weights = np.array([1 - j / d, 1 - j / d, 1 + j / d, 1 + j / d]) / 4
    return freqs, weights


@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize(
    "nu1, nu2, j", [(10.0, -25.0, 12.0), (40.0, 35.0, 15.0), (-60.0, 60.0, 3.0), (5.0, -5.0, -8.0)]
)
def test_ab_system(solver, nu1, nu2, j):
    tr = bn.simulate(bn.SpinChain([nu1, nu2], j), GRID, solver=solver)
    t = GRID.times
    freqs, weights = ab_lines(nu1, nu2, j)
    fid = (weights[:, None] * np.exp(2j * np.pi * freqs[:, None] * t)).sum(0)
    tol = TOL[type(solver)]
    np.testing.assert_allclose(tr.mx, fid.real, atol=tol)
    np.testing.assert_allclose(tr.my, fid.imag, atol=tol)
    d = np.hypot(nu1 - nu2, j)
    iz1 = 1 - (j**2 / d**2) * (1 - np.cos(2 * np.pi * d * t)) / 2
    np.testing.assert_allclose(tr.iz1, iz1, atol=tol)


def test_lindblad_single_spin():
    relax = bn.LindbladRelaxation(t1_s=0.2, t2_s=0.05)
    tr = bn.simulate(bn.SpinChain([30.0]), GRID, solver=bn.DiffraxSolver(relaxation=relax))
    t = GRID.times
    np.testing.assert_allclose(tr.mx, np.cos(2 * np.pi * 30 * t) * np.exp(-t / 0.05), atol=1e-7)
    np.testing.assert_allclose(tr.my, np.sin(2 * np.pi * 30 * t) * np.exp(-t / 0.05), atol=1e-7)
    np.testing.assert_allclose(tr.iz1, np.exp(-t / 0.2), atol=1e-7)


def test_lindblad_dephasing_damps_fid_and_changes_iz1():
    # Mostly T2 (a very long T1): the FID decays to zero within 0.3 s, and the
    # dephasing changes the two-spin polarisation exchange seen in iz1.
    relax = bn.LindbladRelaxation(t1_s=1e6, t2_s=0.02)
    chain = bn.SpinChain([10.0, -10.0], 12.0)
    with_relax = bn.simulate(chain, GRID, solver=bn.DiffraxSolver(relaxation=relax))
    without = bn.simulate(chain, GRID)
    assert np.max(np.abs(with_relax.mx)) <= 1.0 + 1e-9
    assert abs(float(with_relax.mx[-1])) < 1e-5
    assert not np.allclose(with_relax.iz1, without.iz1, atol=1e-3)

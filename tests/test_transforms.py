"""Invariants, and simulate under jit, vmap and grad for every solver."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesnmr as bn

from conftest import random_chain

GRID = bn.TimeGrid(n=300, dt=1e-3)


@pytest.mark.parametrize("n", [2, 3, 5, 7])
def test_reversal_symmetry(rng, n):
    chain = random_chain(rng, n, per_bond=True)
    a, b = bn.simulate(chain, GRID), bn.simulate(chain.reversed(), GRID)
    np.testing.assert_allclose(a.mx, b.mx, atol=1e-11)
    np.testing.assert_allclose(a.my, b.my, atol=1e-11)
    # iz1 watches spin 1, which reversal moves to the other end (for N = 2 the
    # closed form depends on |nu1 - nu2| and J only, so it is symmetric too).
    if n > 2:
        assert np.max(np.abs(a.iz1 - b.iz1)) > 1e-3


@pytest.mark.parametrize("n", [1, 4, 8])
def test_bounds_and_initial_values(rng, n):
    tr = bn.simulate(random_chain(rng, n), GRID)
    assert float(tr.mx[0]) == pytest.approx(1.0, abs=1e-12)
    assert float(tr.my[0]) == pytest.approx(0.0, abs=1e-12)
    assert float(tr.iz1[0]) == pytest.approx(1.0, abs=1e-12)
    assert np.all(np.abs(tr.fid) <= 1 + 1e-12)
    assert np.all(np.abs(tr.iz1) <= 1 + 1e-12)


def test_equal_offsets_fid_is_a_single_line():
    # Isotropic couplings commute with F_x when all offsets are equal (an A_N system).
    tr = bn.simulate(bn.SpinChain([12.0] * 5, [3.0, 9.0, 1.0, 20.0]), GRID)
    t = GRID.times
    np.testing.assert_allclose(tr.fid, np.exp(2j * np.pi * 12.0 * t), atol=1e-11)


def test_traces_conveniences():
    tr = bn.simulate(bn.SpinChain([20.0, -30.0], 8.0), GRID)
    np.testing.assert_array_equal(tr.times, np.arange(300) * 1e-3)
    assert tr.spectrum().shape == (300,)
    assert tr.frequencies_hz.shape == (300,)
    assert tr.as_array().shape == (3, 300)
    np.testing.assert_allclose(tr.fid.real, tr.mx)


SOLVERS = [bn.ExactSolver(), bn.DiffraxSolver(rtol=1e-8, atol=1e-8)]


@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: type(s).__name__)
def test_jit_and_vmap(rng, solver):
    grid = bn.TimeGrid(n=100, dt=1e-3)
    offsets = rng.uniform(-100, 100, (3, 3))
    js = rng.uniform(0, 20, 3)

    @jax.jit
    def batch(o, j):
        return jax.vmap(lambda o, j: bn.simulate(bn.SpinChain(o, j), grid, solver=solver))(o, j)

    out = batch(offsets, js)
    assert out.mx.shape == (3, 100)
    for b in range(3):
        one = bn.simulate(bn.SpinChain(offsets[b], js[b]), grid, solver=solver)
        np.testing.assert_allclose(out.mx[b], one.mx, atol=1e-9)
        np.testing.assert_allclose(out.iz1[b], one.iz1, atol=1e-9)


# Points where eigh has degenerate eigenvalues: J = 0, equal offsets, both.
THETAS = {
    "generic": [-40.0, -10.0, 20.0, 45.0, 12.5],
    "j_zero": [-40.0, -10.0, 20.0, 45.0, 0.0],
    "equal_pair": [10.0, 10.0, -20.0, 30.0, 5.0],
    "all_equal": [10.0, 10.0, 10.0, 10.0, 5.0],
    "all_equal_j_zero": [10.0, 10.0, 10.0, 10.0, 0.0],
    "three_zero": [0.0, 0.0, 0.0, 0.0],
}


def _loss(solver, grid, weights):
    def f(theta):
        n = theta.shape[0] - 1
        tr = bn.simulate(bn.SpinChain(theta[:n], theta[n]), grid, solver=solver)
        w = weights[:, : grid.n]
        return jnp.sum(w[0] * tr.mx + w[1] * tr.my + 30 * w[2] * tr.iz1)

    return f


def _check_grad(f, theta, rtol):
    theta = jnp.asarray(theta)
    grad = jax.jit(jax.grad(f))(theta)
    assert np.all(np.isfinite(grad))
    h = 1e-5
    fd = np.array(
        [(f(theta.at[i].add(h)) - f(theta.at[i].add(-h))) / (2 * h) for i in range(theta.size)]
    )
    scale = np.max(np.abs(fd))
    np.testing.assert_allclose(grad, fd, atol=rtol * scale)


@pytest.mark.parametrize("point", THETAS)
def test_exact_gradient_matches_finite_differences(rng, point):
    weights = rng.normal(size=(3, 300))
    _check_grad(_loss(bn.ExactSolver(), GRID, weights), THETAS[point], 1e-6)


@pytest.mark.parametrize("point", ["generic", "j_zero", "all_equal"])
def test_diffrax_gradient_matches_finite_differences(rng, point):
    grid = bn.TimeGrid(n=80, dt=1e-3)
    weights = rng.normal(size=(3, 80))
    theta = THETAS[point][:2] + THETAS[point][-1:]
    _check_grad(_loss(bn.DiffraxSolver(), grid, weights), theta, 1e-4)


def test_exact_gradient_per_bond_and_t2(rng):
    def f(p):
        chain = bn.SpinChain(p[:4], p[4:7], t2_s=p[7])
        tr = bn.simulate(chain, GRID)
        return jnp.sum(tr.mx**2) + jnp.sum(tr.my) + jnp.sum(tr.iz1)

    _check_grad(f, [10.0, 10.0, -30.0, 50.0, 0.0, 8.0, 8.0, 0.1], 1e-6)


def test_exact_gradient_agrees_with_diffrax_gradient(rng):
    weights = rng.normal(size=(3, 120))
    grid = bn.TimeGrid(n=120, dt=1e-3)
    theta = jnp.array([15.0, -22.0, 40.0, 9.0])
    ge = jax.grad(_loss(bn.ExactSolver(), grid, weights))(theta)
    gd = jax.grad(_loss(bn.DiffraxSolver(), grid, weights))(theta)
    np.testing.assert_allclose(ge, gd, rtol=1e-5, atol=1e-6 * float(jnp.max(jnp.abs(ge))))


@pytest.mark.parametrize("n", [1, 7, 300])
def test_gridded_line_sum_is_the_direct_sum(rng, n):
    # The non-uniform FFT of the local surrogate against the plain sum over lines, with
    # frequencies beyond the Nyquist frequency of the grid, negative ones and a pair
    # closer than the grid's resolution; values and gradients.
    from bayesnmr._physics._spectral import gridded_line_sum

    dt = 1e-3
    freq = jnp.asarray(np.r_[rng.uniform(-2 * np.pi * 900, 2 * np.pi * 900, 60), 10.0, 10.2])
    weight = jnp.asarray(rng.normal(size=freq.size))
    t = jnp.arange(n) * dt

    def direct(f, w):
        x = f[:, None] * t[None, :]
        return w @ jnp.cos(x), w @ jnp.sin(x)

    g = jnp.asarray(rng.normal(size=(2, n)))

    def loss(fn, f, w):
        re, im = fn(f, w)
        return (g[0] * re + g[1] * im).sum()

    want, got = direct(freq, weight), gridded_line_sum(freq, weight, n, dt)
    scale = float(jnp.abs(jnp.stack(want)).max())
    np.testing.assert_allclose(np.stack(got), np.stack(want), atol=1e-9 * scale)
    gw = jax.grad(lambda f, w: loss(direct, f, w), (0, 1))(freq, weight)
    gg = jax.grad(lambda f, w: loss(lambda a, b: gridded_line_sum(a, b, n, dt), f, w), (0, 1))(
        freq, weight
    )
    # Each gradient against its natural scale (at n = 1, t = 0, d/dfreq is exactly 0).
    g_abs = jnp.abs(g).sum(0)
    scales = (float(jnp.abs(weight).max() * (g_abs * (t + dt)).sum()), float(g_abs.sum()))
    for a, b, s in zip(gg, gw, scales, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-9 * s)

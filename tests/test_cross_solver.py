"""Cross-checks: exact vs Diffrax, exact vs a dense reference, exact vs QuTiP."""

import numpy as np
import pytest

import bayesnmr as bn

from conftest import random_chain
from reference import dense_traces, qutip_operators

GRID = bn.TimeGrid(n=300, dt=1e-3)


@pytest.mark.parametrize("n", [2, 3, 4, 5])
@pytest.mark.parametrize("per_bond", [False, True])
def test_exact_vs_diffrax(rng, n, per_bond):
    chain = random_chain(rng, n, per_bond)
    exact = bn.simulate(chain, GRID)
    lvn = bn.simulate(chain, GRID, solver=bn.DiffraxSolver())
    for key in ("mx", "my", "iz1"):
        np.testing.assert_allclose(getattr(exact, key), getattr(lvn, key), atol=1e-6)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("per_bond", [False, True])
def test_exact_vs_dense_reference(rng, n, per_bond):
    chain = random_chain(rng, n, per_bond)
    grid = bn.TimeGrid(n=60, dt=5e-3)
    ref = dense_traces(np.asarray(chain.offsets_hz), np.asarray(chain.bond_j_hz), grid.times)
    tr = bn.simulate(chain, grid)
    for key in ("mx", "my", "iz1"):
        np.testing.assert_allclose(getattr(tr, key), ref[key], atol=1e-10)


def test_strong_coupling_and_large_offset_vs_dense(rng):
    # J larger than the offset differences, on top of a 5 kHz common offset.
    offsets = 5000.0 + rng.uniform(-5, 5, 5)
    chain = bn.SpinChain(offsets, rng.uniform(15, 25, 4))
    grid = bn.TimeGrid(n=50, dt=2e-3)
    ref = dense_traces(offsets, np.asarray(chain.bond_j_hz), grid.times)
    with pytest.warns(UserWarning, match="Nyquist"):  # aliased, in both alike: a numerics test
        tr = bn.simulate(chain, grid)
    for key in ("mx", "my", "iz1"):
        np.testing.assert_allclose(getattr(tr, key), ref[key], atol=1e-9)


def test_exact_vs_qutip():
    qutip = pytest.importorskip("qutip")
    offsets, j = np.array([-30.0, 5.0, 40.0]), np.array([12.0, 7.0])
    n = len(offsets)
    ops = qutip_operators(qutip, n)
    h = sum(2 * np.pi * offsets[i] * ops["z"][i] for i in range(n))
    for b in range(n - 1):
        h += 2 * np.pi * j[b] * sum(ops[a][b] * ops[a][b + 1] for a in "xyz")
    grid = bn.TimeGrid(n=200, dt=1e-3)
    fx, fy = sum(ops["x"]), sum(ops["y"])
    opts = {"atol": 1e-12, "rtol": 1e-10, "nsteps": 100000}
    res_x = qutip.mesolve(h, fx, grid.times, e_ops=[fx, fy], options=opts)
    res_z = qutip.mesolve(h, ops["z"][0], grid.times, e_ops=[ops["z"][0]], options=opts)
    norm_x, norm_z = (fx * fx).tr(), (ops["z"][0] ** 2).tr()
    tr = bn.simulate(bn.SpinChain(offsets, j), grid)
    np.testing.assert_allclose(tr.mx, np.real(res_x.expect[0]) / norm_x, atol=1e-6)
    np.testing.assert_allclose(tr.my, np.real(res_x.expect[1]) / norm_x, atol=1e-6)
    np.testing.assert_allclose(tr.iz1, np.real(res_z.expect[0]) / norm_z, atol=1e-6)


def test_exact_vs_dense_on_a_long_grid(rng):
    # 100 points: the factorised phase tables (blocks of 10 times), at N = 7.
    chain = random_chain(rng, 7, per_bond=True)
    grid = bn.TimeGrid(n=100, dt=1.5e-3)
    ref = dense_traces(np.asarray(chain.offsets_hz), np.asarray(chain.bond_j_hz), grid.times)
    tr = bn.simulate(chain, grid)
    for key in ("mx", "my", "iz1"):
        np.testing.assert_allclose(getattr(tr, key), ref[key], atol=1e-10)


@pytest.mark.parametrize("n", [15, 16, 17, 97, 300, 301, 1024])
def test_factorised_phase_table_is_the_direct_one(rng, n):
    import jax.numpy as jnp

    from bayesnmr._physics._spectral import phase_table

    lam = rng.uniform(-2 * np.pi * 3000, 2 * np.pi * 3000, 40)
    times = np.arange(n) * 7e-4
    cos, sin = phase_table(jnp.asarray(lam), times)
    assert cos.shape == sin.shape == (40, n)
    x = lam[:, None] * times[None, :]
    # The angles reach 1.4e4 rad, whose own rounding is ~2e-12; the table adds a few ulp.
    np.testing.assert_allclose(cos, np.cos(x), rtol=0, atol=1e-11)
    np.testing.assert_allclose(sin, np.sin(x), rtol=0, atol=1e-11)


@pytest.mark.parametrize("j_shape", ["scalar", "chain", "bond"])
def test_simulate_batch_is_simulate_chain_by_chain(rng, j_shape):
    b, n = 7, 4
    offsets = rng.uniform(-100, 100, (b, n))
    j = {
        "scalar": 9.0,
        "chain": rng.uniform(0, 20, b),
        "bond": rng.uniform(0, 20, (b, n - 1)),
    }[j_shape]
    tr = bn.simulate_batch(offsets, j, GRID, t2_s=0.2, chunk=3)  # 3 + 3 + a remainder
    assert tr.mx.shape == tr.iz1.shape == (b, GRID.n)
    for i in range(b):
        ji = j if j_shape == "scalar" else j[i]
        one = bn.simulate(bn.SpinChain(offsets[i], ji, t2_s=0.2), GRID)
        np.testing.assert_allclose(tr.as_array()[i], one.as_array(), rtol=0, atol=1e-13)


def test_simulate_batch_gradient(rng):
    import jax

    offsets = rng.uniform(-50, 50, (3, 3))

    def loss(j):
        return (bn.simulate_batch(offsets, j, GRID, chunk=2).mx ** 2).sum()

    def loss_one(j):
        return sum(
            (bn.simulate(bn.SpinChain(offsets[i], j[i]), GRID).mx ** 2).sum() for i in range(3)
        )

    j = np.array([4.0, 11.0, 0.0])
    np.testing.assert_allclose(jax.grad(loss)(j), jax.grad(loss_one)(j), rtol=1e-10)


def test_float32_time_evaluation_at_n12(rng):
    # The documented tolerance of ExactSolver(time_dtype="float32"): 1e-6 (about 2e-7 seen).
    chain = random_chain(rng, 12)
    exact = bn.simulate(chain, GRID)
    fast = bn.simulate(chain, GRID, solver=bn.ExactSolver(time_dtype="float32"))
    assert fast.mx.dtype == exact.mx.dtype
    err = np.abs(np.asarray(fast.as_array() - exact.as_array())).max()
    assert 1e-12 < err < 1e-6  # float32 was used, and it is within the tolerance


def test_float32_time_evaluation_gradient(rng):
    import jax

    chain = random_chain(rng, 5)

    def loss(j, solver):
        return (bn.simulate(bn.SpinChain(chain.offsets_hz, j), GRID, solver).mx ** 2).sum()

    g64 = jax.grad(loss)(7.0, bn.ExactSolver())
    g32 = jax.grad(loss)(7.0, bn.ExactSolver(time_dtype="float32"))
    np.testing.assert_allclose(g32, g64, rtol=1e-5)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_streamed_sectors_are_the_jitted_solver(rng, n):
    # stream_from=1: every concrete chain takes the sector-by-sector NumPy path.
    import jax

    chain = random_chain(rng, n, per_bond=True)
    streamed = bn.simulate(chain, GRID, solver=bn.ExactSolver(stream_from=1))
    jitted = jax.jit(lambda c: bn.simulate(c, GRID, solver=bn.ExactSolver(stream_from=1)))(chain)
    for key in ("mx", "my", "iz1"):
        np.testing.assert_allclose(getattr(streamed, key), getattr(jitted, key), atol=1e-12)


def test_streamed_panels_and_float32(rng):
    from bayesnmr._physics._streamed import streamed_sums

    chain = random_chain(rng, 7, per_bond=True)
    args = (np.asarray(chain.offsets_hz), np.asarray(chain.bond_j_hz), GRID.times)
    whole = streamed_sums(*args, progress_bar=False)
    paned = streamed_sums(*args, panel=5, progress_bar=False)  # panels of 5 columns
    narrow = streamed_sums(*args, time_dtype="float32", progress_bar=False)
    scale = 7 * 2.0**6
    for a, b, c in zip(whole, paned, narrow, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-10 * scale)
        assert 0 < np.abs(a - c).max() < 1e-6 * scale


def test_sector_blocks_hold_the_dense_spectrum(rng):
    # The blocks (as JAX arrays for the jitted path, as NumPy arrays for the streamed one)
    # together have the eigenvalues of the full 2^N Hamiltonian built from Pauli matrices.
    import jax.numpy as jnp

    from bayesnmr._physics._sectors import sector_hamiltonian

    from reference import dense_hamiltonian

    chain = random_chain(rng, 6, per_bond=True)
    nu, j = np.asarray(chain.offsets_hz), np.asarray(chain.bond_j_hz)
    dense = np.linalg.eigvalsh(dense_hamiltonian(nu, j))
    for xp in (np, jnp):
        blocks = [
            np.asarray(sector_hamiltonian(xp.asarray(nu), xp.asarray(j), k, xp=xp))
            for k in range(7)
        ]
        np.testing.assert_allclose(
            np.sort(np.concatenate([np.linalg.eigvalsh(b) for b in blocks])), dense, atol=1e-9
        )

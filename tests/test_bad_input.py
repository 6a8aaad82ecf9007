"""Every bad input raises a ValueError that names the argument."""

import numpy as np
import pytest

import bayesnmr as bn

GRID = bn.TimeGrid(n=10, dt=1e-3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"offsets_hz": [1.0, np.nan], "j_hz": 1.0}, "`offsets_hz` must be finite"),
        ({"offsets_hz": [1.0, np.inf], "j_hz": 1.0}, "`offsets_hz` must be finite"),
        ({"offsets_hz": [], "j_hz": 1.0}, "`offsets_hz` must be a 1-D array"),
        ({"offsets_hz": [[1.0, 2.0]], "j_hz": 1.0}, "`offsets_hz` must be a 1-D array"),
        ({"offsets_hz": 3.0, "j_hz": 1.0}, "`offsets_hz` must be a 1-D array"),
        ({"offsets_hz": [1.0, 2.0, 3.0], "j_hz": [1.0]}, "`j_hz` must be a scalar or an array"),
        ({"offsets_hz": [1.0, 2.0], "j_hz": [[1.0]]}, "`j_hz` must be a scalar or an array"),
        ({"offsets_hz": [1.0, 2.0], "j_hz": np.nan}, "`j_hz` must be finite"),
        (
            {"offsets_hz": [1.0, 2.0], "j_hz": 1.0, "t2_s": -0.1},
            "`t2_s` must be finite and positive",
        ),
        (
            {"offsets_hz": [1.0, 2.0], "j_hz": 1.0, "t2_s": 0.0},
            "`t2_s` must be finite and positive",
        ),
        ({"offsets_hz": [1.0, 2.0], "j_hz": 1.0, "t2_s": np.nan}, "`t2_s` must be finite"),
        ({"offsets_hz": [1.0, 2.0], "j_hz": 1.0, "t2_s": [0.1, 0.2]}, "`t2_s` must be a scalar"),
    ],
)
def test_bad_chain(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bn.SpinChain(**kwargs)


@pytest.mark.parametrize(
    "n, dt, match",
    [
        (0, 1e-3, "`n` must be a positive integer"),
        (-5, 1e-3, "`n` must be a positive integer"),
        (2.5, 1e-3, "`n` must be a positive integer"),
        (True, 1e-3, "`n` must be a positive integer"),
        (10, 0.0, "`dt` must be a positive number"),
        (10, -1e-3, "`dt` must be a positive number"),
        (10, np.nan, "`dt` must be a positive number"),
        (10, "fast", "`dt` must be a positive number"),
    ],
)
def test_bad_grid(n, dt, match):
    with pytest.raises(ValueError, match=match):
        bn.TimeGrid(n=n, dt=dt)


@pytest.mark.parametrize("solver", ["exact", object(), None.__class__])
def test_unknown_solver(solver):
    with pytest.raises(ValueError, match="`solver` must be a solver object"):
        bn.simulate(bn.SpinChain([1.0]), GRID, solver=solver)


def test_wrong_system_and_grid_types():
    with pytest.raises(ValueError, match="`chain` must be a `bn.SpinChain`"):
        bn.simulate([1.0, 2.0], GRID)
    with pytest.raises(ValueError, match="`grid` must be a `bn.TimeGrid`"):
        bn.simulate(bn.SpinChain([1.0]), np.arange(10))


def test_exact_solver_refuses_huge_chain_with_an_estimate():
    with pytest.raises(ValueError, match=r"(?s)min and .* GiB.*TypicalitySolver"):
        bn.simulate(bn.SpinChain(np.zeros(20), 5.0), GRID)


def test_diffrax_refuses_what_does_not_fit():
    with pytest.raises(ValueError, match="max_memory_gib"):
        bn.simulate(bn.SpinChain(np.zeros(12), 5.0), GRID, solver=bn.DiffraxSolver())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "needs at least one of `t1_s` and `t2_s`"),
        ({"t1_s": -1.0}, "`t1_s` must be finite and positive"),
        ({"t2_s": np.nan}, "`t2_s` must be finite"),
    ],
)
def test_bad_lindblad(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bn.LindbladRelaxation(**kwargs)


def test_lindblad_unphysical_and_wrong_length():
    chain = bn.SpinChain([1.0, 2.0], 3.0)
    relax = bn.LindbladRelaxation(t1_s=0.1, t2_s=0.5)
    with pytest.raises(ValueError, match="must not exceed 2"):
        bn.simulate(chain, GRID, solver=bn.DiffraxSolver(relaxation=relax))
    relax = bn.LindbladRelaxation(t1_s=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"one entry per spin, shape \(2,\)"):
        bn.simulate(chain, GRID, solver=bn.DiffraxSolver(relaxation=relax))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"solver": "tsit5"}, "must be a Diffrax solver"),
        ({"rtol": -1.0}, "`rtol` must be finite and positive"),
        ({"max_steps": 0}, "`max_steps` must be a positive int"),
        ({"relaxation": 0.1}, "`relaxation` must be a `bn.LindbladRelaxation`"),
    ],
)
def test_bad_diffrax_solver(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bn.DiffraxSolver(**kwargs)


def test_diffrax_max_steps_is_a_clear_runtime_error():
    solver = bn.DiffraxSolver(max_steps=3)
    with pytest.raises(RuntimeError, match="max_steps"):  # an EquinoxRuntimeError
        bn.simulate(bn.SpinChain([50.0, -20.0], 5.0), bn.TimeGrid(100, 1e-3), solver=solver)


@pytest.mark.parametrize(
    ("offsets", "j", "kwargs", "match"),
    [
        (np.zeros(3), 5.0, {}, r"`offsets_hz` must have shape \(B, N\)"),
        (np.zeros((2, 3)), np.zeros(3), {}, r"`j_hz` must be a scalar, shape \(2,\)"),
        (np.zeros((2, 3)), np.zeros((2, 3)), {}, r"\(2, 2\) \(one per bond\)"),
        (np.array([[0.0, 1.0], [np.nan, 2.0]]), 5.0, {}, r"`offsets_hz` must be finite, .*\[1\]"),
        (np.zeros((2, 3)), [1.0, np.inf], {}, r"`j_hz` must be finite, but rows \[1\]"),
        (np.zeros((2, 3)), 5.0, {"chunk": 0}, "`chunk` must be a positive integer"),
        (np.zeros((2, 3)), 5.0, {"t2_s": -1.0}, "t2_s"),
        (np.zeros((2, 17)), 5.0, {}, "beyond `max_spins=16`"),
    ],
)
def test_bad_simulate_batch(offsets, j, kwargs, match):
    with pytest.raises(ValueError, match=match):
        bn.simulate_batch(offsets, j, GRID, **kwargs)


def test_simulate_batch_typicality_needs_a_spectral_radius():
    with pytest.raises(ValueError, match="needs `spectral_radius_hz`"):
        bn.simulate_batch(np.zeros((2, 3)), 5.0, GRID, solver=bn.TypicalitySolver())


def test_bad_time_dtype():
    with pytest.raises(ValueError, match="`time_dtype` must be None, 'float32' or 'float64'"):
        bn.ExactSolver(time_dtype="float16")


@pytest.mark.parametrize("name", ["max_spins", "stream_from"])
def test_bad_exact_solver_sizes(name):
    with pytest.raises(ValueError, match=f"`{name}` must be a positive integer"):
        bn.ExactSolver(**{name: 0})


def test_complex_parameters_are_refused():
    with pytest.raises(ValueError, match="`offsets_hz` must be real"):
        bn.SpinChain(np.array([1.0 + 2j, 3.0]), 5.0)
    with pytest.raises(ValueError, match="`j_hz` must be real"):
        bn.SpinChain([1.0, 3.0], 5.0 + 0j)


def test_t2_on_the_chain_and_relaxation_on_the_solver_do_not_stack():
    solver = bn.DiffraxSolver(relaxation=bn.LindbladRelaxation(t1_s=1.0, t2_s=0.5))
    with pytest.raises(ValueError, match="decays would multiply"):
        bn.simulate(bn.SpinChain([0.0, 10.0], 5.0, t2_s=0.5), GRID, solver=solver)
    bn.simulate(bn.SpinChain([0.0, 10.0], 5.0), GRID, solver=solver)  # one place: fine


def test_offsets_beyond_nyquist_warn():
    # GRID: dt = 1 ms, Nyquist 500 Hz.
    with pytest.warns(UserWarning, match=r"600 Hz lies beyond the Nyquist frequency"):
        bn.simulate(bn.SpinChain([0.0, 600.0], 5.0), GRID)
    with pytest.warns(UserWarning, match="Nyquist"):
        bn.simulate_batch(np.array([[0.0, 10.0], [0.0, -600.0]]), 5.0, GRID)
    bn.simulate(bn.SpinChain([0.0, 499.0], 5.0), GRID)  # inside the window: silent


def test_the_test_run_checks_jaxtyping_annotations():
    # conftest.py installs jaxtyping's import hook: a wrong shape is caught at the call.
    import jax.numpy as jnp
    from jaxtyping import TypeCheckError

    from bayesnmr._physics._spectral import eigh_centred

    with pytest.raises(TypeCheckError):
        eigh_centred(jnp.zeros((3, 4)))  # annotated Float[Array, "d d"]

"""Any network of couplings (`bn.SpinSystem`): against a chain, a dense reference, nmrsim
and QuTiP, with gradients, ppm and bad input."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesnmr as bn

from reference import dense_traces, qutip_operators

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def random_network(rng, n, spread=100.0, jmax=15.0, density=1.0):
    j = np.triu(rng.uniform(-2.0, jmax, (n, n)) * (rng.uniform(size=(n, n)) < density), 1)
    return rng.uniform(-spread, spread, n), j + j.T


def _close(a, b, atol):
    for key in ("mx", "my", "iz1"):
        np.testing.assert_allclose(getattr(a, key), getattr(b, key), atol=atol, err_msg=key)


@pytest.mark.parametrize(
    "solver",
    [bn.ExactSolver(), bn.ExactSolver(stream_from=2), bn.DiffraxSolver(), bn.TypicalitySolver(7)],
    ids=["exact", "streamed", "diffrax", "typicality"],
)
def test_a_chain_as_a_system_is_the_chain(rng, solver):
    chain = bn.SpinChain(rng.uniform(-60, 60, 4), rng.uniform(2, 15, 3), t2_s=0.1)
    system = bn.SpinSystem.from_chain(chain)
    np.testing.assert_array_equal(system.coupling_matrix(), chain.coupling_matrix())
    grid = bn.TimeGrid(120, 1e-3)
    _close(bn.simulate(system, grid, solver), bn.simulate(chain, grid, solver), atol=1e-12)


@pytest.mark.parametrize("iz_spin", [1, 3])
def test_network_against_the_dense_reference(rng, iz_spin):
    offsets, j = random_network(rng, 5)
    grid = bn.TimeGrid(150, 1e-3)
    ref = dense_traces(offsets, j, grid.times, iz_spin=iz_spin)
    system = bn.SpinSystem(offsets, j, iz_spin=iz_spin)
    for solver in (bn.ExactSolver(), bn.ExactSolver(stream_from=2)):
        tr = bn.simulate(system, grid, solver)
        for key in ("mx", "my", "iz1"):
            np.testing.assert_allclose(getattr(tr, key), ref[key], atol=1e-10, err_msg=key)
    # The other spins' polarisations differ: iz_spin is not ignored.
    other = bn.simulate(bn.SpinSystem(offsets, j, iz_spin=5 - iz_spin), grid)
    assert np.abs(np.asarray(other.iz1) - ref["iz1"]).max() > 1e-2


def test_network_diffrax_and_typicality_agree_with_exact(rng):
    offsets, j = random_network(rng, 6)
    system = bn.SpinSystem(offsets, j, iz_spin=2)
    grid = bn.TimeGrid(100, 1e-3)
    exact = bn.simulate(system, grid)
    _close(bn.simulate(system, grid, bn.DiffraxSolver()), exact, atol=1e-7)
    typ = bn.simulate(system, grid, bn.TypicalitySolver(n_vectors=256, seed=3))
    for key in ("mx", "my", "iz1"):
        z = (np.asarray(getattr(typ, key)) - np.asarray(getattr(exact, key)))[1:]
        z = z / np.asarray(getattr(typ, key + "_err"))[1:]
        assert np.sqrt(np.mean(z**2)) < 2.0, key  # errors as stated (RMS z about 1)


def _merged(lines, tol=1e-6):
    lines = lines[np.argsort(lines[:, 0])]
    g = np.concatenate([[0], np.cumsum(np.diff(lines[:, 0]) > tol)])
    w = np.bincount(g, weights=lines[:, 1])
    return np.column_stack([np.bincount(g, weights=lines[:, 0] * lines[:, 1]) / w, w])


def _nearest(lines, freqs):
    i = np.searchsorted(lines[:, 0], freqs).clip(1, len(lines) - 1)
    left = np.abs(lines[i - 1, 0] - freqs) < np.abs(lines[i, 0] - freqs)
    return lines[np.where(left, i - 1, i)]


@pytest.mark.parametrize("n", range(3, 9))
def test_line_list_against_nmrsim(n):
    qm = pytest.importorskip("nmrsim.qm")
    rng = np.random.default_rng([18, n])
    # nmrsim wants absolute (positive) frequencies; every pair coupled, some weakly.
    offsets, j = random_network(rng, n, jmax=15.0)
    offsets = offsets + 250.0
    ours = bn.line_list(bn.SpinSystem(offsets, j), cutoff=0.0)
    theirs = _merged(np.array(qm.qm_spinsystem(list(offsets), j, cache=False, sparse=False)))
    np.testing.assert_allclose(ours[:, 1].sum(), n, rtol=1e-10)  # intensities sum to N
    # Every line of either list, but the faintest, is in the other (nmrsim: 1e-4 Hz).
    for a, b in ((theirs, ours), (ours, theirs)):
        strong = a[a[:, 1] > 0.01]
        match = _nearest(b, strong[:, 0])
        np.testing.assert_allclose(match[:, 0], strong[:, 0], atol=1e-4)
        np.testing.assert_allclose(match[:, 1], strong[:, 1], atol=1e-4)


def test_line_list_is_the_fid(rng):
    offsets, j = random_network(rng, 4, spread=60.0)
    system = bn.SpinSystem(offsets, j)
    grid = bn.TimeGrid(200, 1e-3)
    lines = bn.line_list(system, cutoff=0.0, merge_hz=0.0)
    m = (lines[:, 1] / 4) @ np.exp(2j * np.pi * lines[:, 0][:, None] * grid.times[None, :])
    tr = bn.simulate(system, grid)
    np.testing.assert_allclose(tr.mx, m.real, atol=1e-12)
    np.testing.assert_allclose(tr.my, m.imag, atol=1e-12)
    # AB closed form: lines at the centre +- (J/2 +- D/2), D = sqrt(dnu^2 + J^2).
    ab = bn.line_list(bn.SpinSystem([10.0, 40.0], [[0.0, 12.0], [12.0, 0.0]]))
    d = np.hypot(30.0, 12.0)
    expect = 25.0 + np.array([-6 - d / 2, 6 - d / 2, -6 + d / 2, 6 + d / 2])
    np.testing.assert_allclose(ab[:, 0], expect, atol=1e-10)
    sin2theta = 12.0 / d  # the roof effect: the inner lines are stronger
    outer, inner = (1 - sin2theta) / 2, (1 + sin2theta) / 2
    np.testing.assert_allclose(ab[:, 1], [outer, inner, inner, outer], atol=1e-12)


def test_against_qutip_with_relaxation():
    qutip = pytest.importorskip("qutip")
    rng = np.random.default_rng(18)
    offsets, j = random_network(rng, 4, spread=50.0)
    n = len(offsets)
    t1, t2 = 0.08, 0.05
    ops = qutip_operators(qutip, n)
    h = sum(2 * np.pi * offsets[i] * ops["z"][i] for i in range(n))
    for a in range(n):
        for b in range(a + 1, n):
            h += 2 * np.pi * j[a, b] * sum(ops[c][a] * ops[c][b] for c in "xyz")
    a2, c2 = 1 / (2 * t1), 2 / t2 - 1 / t1
    c_ops = []
    for i in range(n):
        c_ops += [np.sqrt(a2) * ops["p"][i], np.sqrt(a2) * ops["p"][i].dag()]
        c_ops.append(np.sqrt(c2) * ops["z"][i])
    grid = bn.TimeGrid(n=150, dt=1e-3)
    fx, fy, iz3 = sum(ops["x"]), sum(ops["y"]), ops["z"][2]
    opts = {"atol": 1e-12, "rtol": 1e-10, "nsteps": 100000}
    res_x = qutip.mesolve(h, fx, grid.times, c_ops, e_ops=[fx, fy], options=opts)
    res_z = qutip.mesolve(h, iz3, grid.times, c_ops, e_ops=[iz3], options=opts)
    norm_x, norm_z = (fx * fx).tr(), (iz3**2).tr()
    solver = bn.DiffraxSolver(relaxation=bn.LindbladRelaxation(t1_s=t1, t2_s=t2))
    tr = bn.simulate(bn.SpinSystem(offsets, j, iz_spin=3), grid, solver)
    np.testing.assert_allclose(tr.mx, np.real(res_x.expect[0]) / norm_x, atol=1e-6)
    np.testing.assert_allclose(tr.my, np.real(res_x.expect[1]) / norm_x, atol=1e-6)
    np.testing.assert_allclose(tr.iz1, np.real(res_z.expect[0]) / norm_z, atol=1e-6)
    assert float(tr.mx[-1] ** 2 + tr.my[-1] ** 2) < 0.1  # the relaxation acted


def test_gradient_by_every_coupling_including_a_zero_one(rng):
    offsets, j = random_network(rng, 4)
    j[0, 3] = j[3, 0] = 0.0  # an uncoupled pair: its gradient is still exact
    grid = bn.TimeGrid(80, 1e-3)
    w = jnp.asarray(rng.normal(size=(3, grid.n)))

    def loss(jm):
        tr = bn.simulate(bn.SpinSystem(offsets, jm, iz_spin=2), grid)
        return jnp.sum(w[0] * tr.mx + w[1] * tr.my + w[2] * tr.iz1)

    g = np.asarray(jax.grad(loss)(jnp.asarray(j)))
    np.testing.assert_allclose(g, g.T, atol=1e-12)  # symmetric: half per entry
    h = 1e-5
    for a, b in ((0, 1), (0, 3), (1, 2)):
        e = np.zeros_like(j)
        e[a, b] = e[b, a] = h
        fd = (loss(jnp.asarray(j + e)) - loss(jnp.asarray(j - e))) / (2 * h)
        np.testing.assert_allclose(2 * g[a, b], fd, rtol=1e-6, atol=1e-8)
    assert abs(g[0, 3]) > 1e-3


def test_shifts_in_ppm():
    system = bn.SpinSystem.from_ppm([7.26, 7.10, 6.95], np.zeros((3, 3)), spectrometer_mhz=400.0)
    carrier = (7.26 + 6.95) / 2  # the default carrier: the centre of the shifts
    np.testing.assert_allclose(system.offsets_hz, (np.array([7.26, 7.10, 6.95]) - carrier) * 400)
    np.testing.assert_allclose(
        bn.offsets_to_ppm(system.offsets_hz, 400.0, carrier), [7.26, 7.10, 6.95], atol=1e-12
    )
    at = bn.SpinSystem.from_ppm([1.0, 2.0], np.zeros((2, 2)), 500.0, carrier_ppm=0.0)
    np.testing.assert_allclose(at.offsets_hz, [500.0, 1000.0])


@pytest.mark.parametrize(
    ("offsets", "j", "kwargs", "match"),
    [
        ([0.0, 10.0], [[0.0, 5.0], [4.0, 0.0]], {}, "symmetric"),
        ([0.0, 10.0], [[1.0, 5.0], [5.0, 0.0]], {}, "zero diagonal"),
        ([0.0, 10.0], [[0.0, np.nan], [np.nan, 0.0]], {}, "finite"),
        ([0.0, np.inf], np.zeros((2, 2)), {}, "finite"),
        ([0.0, 10.0, 5.0], np.zeros((2, 2)), {}, r"\(3, 3\) matrix"),
        ([0.0, 10.0], [3.0], {}, r"\(2, 2\) matrix"),
        ([0.0, 10.0], np.zeros((2, 2)), {"iz_spin": 0}, "counted from 1"),
        ([0.0, 10.0], np.zeros((2, 2)), {"iz_spin": 3}, "from 1 to 2"),
        ([0.0, 10.0], np.zeros((2, 2)), {"names": ["H1", "H1"]}, "distinct names"),
        ([0.0, 10.0], np.zeros((2, 2)), {"t2_s": -1.0}, "t2_s"),
    ],
)
def test_bad_systems_are_refused(offsets, j, kwargs, match):
    with pytest.raises(ValueError, match=match):
        bn.SpinSystem(offsets, j, **kwargs)


def test_surrogates_refuse_a_network_and_line_list_refuses_bad_input():
    system = bn.SpinSystem([-40.0, -10.0, 20.0, 45.0], np.full((4, 4), 5.0) - 5.0 * np.eye(4))
    with pytest.raises(ValueError, match="trained for chains"):
        bn.simulate(system, bn.TimeGrid(300, 1e-3), bn.load_surrogate("chain4"))
    with pytest.raises(ValueError, match="spectrometer_mhz"):
        bn.SpinSystem.from_ppm([1.0], np.zeros((1, 1)), spectrometer_mhz=0.0)
    with pytest.raises(ValueError, match="cutoff"):
        bn.line_list(system, cutoff=-1.0)
    with pytest.raises(ValueError, match="SpinSystem"):
        bn.line_list([1.0, 2.0])


RING = """
spectrometer_mhz = 400.0
carrier_ppm = 7.20
iz_spin = "H4"

[spins.H3]
shift_ppm = 7.28
range_ppm = [7.24, 7.32]

[spins.H4]
offset_hz = -24.0

[spins.H5]
shift_ppm = 7.19

[[coupling]]
spins = ["H3", "H4"]
j_hz = 8.1
range_hz = [6.0, 10.0]

[[coupling]]
spins = ["H5", "H4"]
same_as = ["H3", "H4"]
"""


def test_spin_system_file_round_trip(tmp_path):
    path = tmp_path / "ring.toml"
    path.write_text(RING)
    spec = bn.load_spin_system(path)
    assert spec.names == ("H3", "H4", "H5") and spec.system.iz_spin == 2
    np.testing.assert_allclose(spec.system.offsets_hz, [32.0, -24.0, -4.0], atol=1e-9)
    np.testing.assert_allclose(spec.offset_boxes[0], (16.0, 48.0), atol=1e-9)
    assert spec.offset_boxes[1:] == (None, None)  # no box: fixed in a fit
    expect = np.zeros((3, 3))
    expect[0, 1] = expect[1, 0] = expect[1, 2] = expect[2, 1] = 8.1  # tied: the same value
    np.testing.assert_array_equal(spec.system.j_hz, expect)
    assert spec.couplings[1].tied_to == (0, 1) and spec.couplings[1].box is None
    again = bn.load_spin_system(bn.save_spin_system(spec, tmp_path / "again.toml"))
    assert again.couplings == spec.couplings and again.names == spec.names
    np.testing.assert_allclose(again.system.offsets_hz, spec.system.offsets_hz, rtol=1e-15)
    np.testing.assert_allclose(again.offset_boxes[0], spec.offset_boxes[0], rtol=1e-15)
    assert again.system.iz_spin == 2


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (("range_ppm = [7.24, 7.32]", "range_ppm = [7.24, 7.32]\nshift_hz = 3.0"), "unknown key"),
        (('same_as = ["H3", "H4"]', 'same_as = ["H3", "H9"]'), r"unknown spin\(s\) \['H9'\]"),
        (('same_as = ["H3", "H4"]', 'same_as = ["H3", "H5"]'), "not listed"),
        (("spectrometer_mhz = 400.0", ""), "needs `spectrometer_mhz`"),
        (("range_ppm = [7.24, 7.32]", "range_ppm = [7.30, 7.32]"), "outside its prior box"),
        (('iz_spin = "H4"', 'iz_spin = "H7"'), "`iz_spin`"),
        (("j_hz = 8.1", "j_hz = 8.1\nspins_ = 1"), "unknown key"),
        (('spins = ["H5", "H4"]', 'spins = ["H4", "H3"]'), "listed twice"),
        (('spins = ["H5", "H4"]', 'spins = ["H5", "H5"]'), "to itself"),
        (("range_hz = [6.0, 10.0]", "range_hz = [10.0, 6.0]"), "lo < hi"),
        (("offset_hz = -24.0", "offset_hz = -24.0\nshift_ppm = 7.1"), "exactly one"),
        (("j_hz = 8.1", 'j_hz = "eight"'), "finite number"),
        (("[spins.H5]", "[spins.H5\n"), "as TOML"),
    ],
)
def test_bad_spin_system_files_are_refused(tmp_path, change, match):
    path = tmp_path / "bad.toml"
    assert change[0] in RING
    path.write_text(RING.replace(change[0], change[1], 1))
    with pytest.raises(ValueError, match=match):
        bn.load_spin_system(path)


def test_cli_simulates_a_system_file(tmp_path, capsys):
    from bayesnmr._cli import main

    path = tmp_path / "ring.toml"
    path.write_text(RING)
    out = tmp_path / "ring.nc"
    assert main(["simulate", "--system", str(path), "--sigma", "0", "--out", str(out)]) == 0
    data = bn.load_dataset(out)
    spec = bn.load_spin_system(path)
    tr = bn.simulate(spec.system, data.grid)
    np.testing.assert_allclose(data.iz1, tr.iz1, atol=1e-12)  # spin H4's polarisation
    assert data.iz_spin == 2
    np.testing.assert_allclose(data.truth["j_hz"], spec.system.j_hz)
    assert main(["simulate", "--system", str(tmp_path / "none.toml")]) == 2
    assert "No spin-system file" in capsys.readouterr().err
    with pytest.raises(ValueError, match="polarisation of spin 2"):  # not fit as a chain
        bn.fit(data, bn.Priors.around(data.truth["offsets_hz"], 5.0))


AMX = """
iz_spin = "A"

[spins.A]
offset_hz = -35.0
range_hz = [-45.0, -25.0]

[spins.M]
offset_hz = 5.0

[spins.X]
offset_hz = 40.0
range_hz = [30.0, 50.0]

[[coupling]]
spins = ["A", "M"]
j_hz = 9.0
range_hz = [4.0, 14.0]

[[coupling]]
spins = ["M", "X"]
same_as = ["A", "M"]

[[coupling]]
spins = ["A", "X"]
j_hz = 2.0
"""


def test_fit_and_sample_a_network_from_its_file(tmp_path, capsys, allow_rank_promotion):
    path = tmp_path / "amx.toml"
    path.write_text(AMX)
    spec = bn.load_spin_system(path)
    data = bn.synthesize(spec.system, bn.TimeGrid(150, 1e-3), sigma=0.02, seed=3)
    fit = bn.fit(data, spec)  # the plain call: from the file's values and random starts
    assert fit.names == ["offsets_hz[A]", "offsets_hz[X]", "j_hz[A-M]"]
    x = np.array([fit.offsets_hz[0], fit.offsets_hz[2], fit.j_hz[0, 1]])
    truth = np.array([-35.0, 40.0, 9.0])
    assert np.all(np.abs(x - truth) < 4 * fit.stderr), (x, fit.stderr)
    np.testing.assert_allclose(fit.j_hz[1, 2], fit.j_hz[0, 1])  # tied
    assert fit.j_hz[0, 2] == 2.0 and fit.offsets_hz[1] == 5.0  # fixed
    from bayesnmr._cli import main

    data_path = bn.save_dataset(data, tmp_path / "amx.nc")
    assert main(["fit", str(data_path), "--system", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "j_hz[A-M] =" in printed and "offsets_hz[X] =" in printed
    dt = bn.sample_posterior(
        data, spec, sampler=bn.NUTS(chains=2, warmup=150, draws=150), init=fit, progress_bar=False
    )
    post = dt.posterior
    assert list(post["offsets_hz"].coords["spin"].values) == ["A", "X"]
    assert list(post["j_hz"].coords["coupling"].values) == ["A-M"]
    draws = np.column_stack(
        [np.asarray(post["offsets_hz"]).reshape(-1, 2), np.asarray(post["j_hz"]).reshape(-1)]
    )
    z = (draws.mean(0) - truth) / draws.std(0)
    assert np.all(np.abs(z) < 4), z
    np.testing.assert_allclose(draws.std(0), fit.stderr, rtol=0.35)  # NUTS ~ Laplace here
    assert {"posterior_predictive", "observed_data", "sample_stats"} <= set(dt.children)
    with pytest.raises(ValueError, match="surrogates are for chains"):
        bn.sample_posterior(data, spec, solver=bn.load_surrogate("chain4"))
    other = bn.Dataset(data.grid, data.mx, data.my, data.iz1, 3, iz_spin=2)
    with pytest.raises(ValueError, match="`iz_spin` is 1"):
        bn.fit(other, spec)
    path.write_text(AMX.replace("range_hz = [-45.0, -25.0]", "").replace(
        "range_hz = [30.0, 50.0]", "").replace("range_hz = [4.0, 14.0]", ""))  # fmt: skip
    with pytest.raises(ValueError, match="Nothing to fit"):
        bn.fit(data, bn.load_spin_system(path))


def test_fit_finds_a_network_from_the_data_alone(allow_rank_promotion):
    # The ring with every shift's box widened to +-40 Hz (the boxes overlap, so which
    # line is whose is unknown) and the file's values at the box centres. Measured on
    # this data set: 8 descents from the file's values and random points of the boxes
    # stop at misfit 0.74 (an offset 23 Hz off); the global search finds the truth.
    import dataclasses

    from bayesnmr._inference._network_space import NetworkSpace

    spec = bn.load_spin_system(EXAMPLES / "systems" / "ortho_disubstituted_benzene.toml")
    centres = np.asarray(spec.system.offsets_hz)
    spec = dataclasses.replace(spec, offset_boxes=tuple((c - 40, c + 40) for c in centres))
    space = NetworkSpace(spec)
    rng = np.random.default_rng(1)
    truth = [rng.uniform(space.lo, space.hi) for _ in range(4)][-1]
    data = bn.synthesize(space.system(jnp.asarray(truth)), bn.TimeGrid(300, 1e-3), 0.01, seed=3)
    fit = bn.fit(data, spec, progress_bar=False)
    x = space.free(fit.offsets_hz, fit.j_hz)
    assert np.all(np.abs(x - truth) < 5 * fit.stderr + 0.01), (x - truth, fit.stderr)
    assert fit.sigma < 0.0105 and fit.modes[0].probability > 0.99


AB_SWAP = """
[spins.A]
offset_hz = 0.0
range_hz = [-50.0, 50.0]

[spins.B]
offset_hz = 0.0
range_hz = [-50.0, 50.0]

[[coupling]]
spins = ["A", "B"]
j_hz = 7.0
"""


def test_a_network_posterior_reports_its_modes_apart(tmp_path, allow_rank_promotion):
    # Two spins in the same box, FID only: swapping them fits exactly as well, so the fit
    # finds two modes of equal probability and NUTS samples each apart.
    path = tmp_path / "ab.toml"
    path.write_text(AB_SWAP)
    spec = bn.load_spin_system(path)
    full = bn.synthesize(bn.SpinSystem([-20.0, 25.0], [[0, 7.0], [7.0, 0]]), bn.TimeGrid(150, 1e-3),
                         0.02, seed=1)  # fmt: skip
    data = bn.Dataset(full.grid, full.mx, full.my, None, 2)
    fit = bn.fit(data, spec, progress_bar=False)
    assert len(fit.modes) == 2
    np.testing.assert_allclose([m.probability for m in fit.modes], 0.5, atol=0.05)
    np.testing.assert_allclose(fit.modes[0].offsets_hz, fit.modes[1].offsets_hz[::-1], atol=0.01)
    assert sorted(np.round(fit.offsets_hz)) == [-20.0, 25.0]
    assert "mode 1: p = 0.5" in fit.describe() and "'1-2': 7.0" in fit.describe()
    dt = bn.sample_posterior(
        data, spec, init=fit, sampler=bn.NUTS(chains=1, warmup=100, draws=100), progress_bar=False
    )
    assert {"posterior_mode1", "sample_stats_mode1", "modes"} <= set(dt.children)
    modes = dt["modes"].to_dataset()
    assert list(modes["sampled"].values) == [True, True]
    assert list(modes["spin"].values) == ["A", "B"]
    means = [
        np.asarray(dt[g]["offsets_hz"]).reshape(-1, 2).mean(0)
        for g in ("posterior", "posterior_mode1")
    ]
    np.testing.assert_allclose(means[0], means[1][::-1], atol=0.05)
    np.testing.assert_allclose(sorted(means[0]), [-20.0, 25.0], atol=0.05)
    short = bn.NUTS(chains=1, warmup=50, draws=50)
    one = bn.sample_posterior(
        data, spec, init=fit, min_mode_probability=0.9, sampler=short, progress_bar=False
    )
    assert "posterior_mode1" not in one.children
    assert list(one["modes"].to_dataset()["sampled"].values) == [True, False]


def test_local_surrogate_posterior_of_a_network_is_the_exact_one(tmp_path, allow_rank_promotion):
    # The problem-local surrogate around the fit's mode, corrected by PSIS with exact
    # solves, against exact NUTS on the same data (same chains, same seed).
    path = tmp_path / "amx.toml"
    path.write_text(AMX)
    spec = bn.load_spin_system(path)
    data = bn.synthesize(spec.system, bn.TimeGrid(150, 1e-3), sigma=0.02, seed=3)
    fit = bn.fit(data, spec, progress_bar=False)
    settings = dict(init=fit, sampler=bn.NUTS(chains=2, warmup=300, draws=300), progress_bar=False)
    exact = bn.sample_posterior(data, spec, **settings)
    local = bn.sample_posterior(data, spec, solver="local", **settings)
    c = local["correction"].attrs
    assert c["ok"] == 1 and c["pareto_k"] < 0.5 and local.attrs["corrected"] == 1
    assert {"posterior_surrogate", "correction"} <= set(local.children)
    assert json.loads(c["local_surrogate"])["training"]["max_weight_residual"] < 1e-4

    def draws(group):
        parts = [np.asarray(group[k]).reshape(-1, np.shape(group[k])[-1])
                 for k in ("offsets_hz", "j_hz")]  # fmt: skip
        return np.hstack(parts)

    e, lo = draws(exact.posterior), draws(local.posterior)
    np.testing.assert_array_less(np.abs(lo.mean(0) - e.mean(0)) / e.std(0), 0.3)
    np.testing.assert_allclose(lo.std(0), e.std(0), rtol=0.25)
    # A box too narrow to hold the posterior: the correction fails and the mode is
    # sampled again with the exact solver, with a warning that says so.
    import dataclasses

    narrow = dataclasses.replace(fit.modes[0], covariance=fit.modes[0].covariance * 1e-4)
    fit = dataclasses.replace(fit, modes=(narrow,))
    settings["init"] = fit
    with pytest.warns(bn.ConvergenceWarning, match="sampled again with the exact solver"):
        again = bn.sample_posterior(data, spec, solver="local", **settings)
    assert again.attrs["fallback"] == "exact" and again.attrs["corrected"] == 0
    relaxing = dataclasses.replace(spec, system=bn.SpinSystem(
        spec.system.offsets_hz, spec.system.j_hz, 0.5, names=spec.system.names))  # fmt: skip
    with pytest.raises(ValueError, match="no relaxation"):
        bn.sample_posterior(data, relaxing, solver="local", **settings)
    assert np.all(np.abs(draws(again.posterior).mean(0) - e.mean(0)) / e.std(0) < 0.3)


def test_simulate_batch_of_networks(rng):
    systems = [random_network(rng, 4) for _ in range(3)]
    offsets = np.stack([o for o, _ in systems])
    js = np.stack([j for _, j in systems])
    grid = bn.TimeGrid(60, 1e-3)
    batch = bn.simulate_batch(offsets, js, grid, iz_spin=2, t2_s=0.2)
    for i, (o, j) in enumerate(systems):
        one = bn.simulate(bn.SpinSystem(o, j, 0.2, iz_spin=2), grid)
        for key in ("mx", "my", "iz1"):
            np.testing.assert_allclose(getattr(batch, key)[i], getattr(one, key), atol=1e-12)
    js[1, 0, 1] += 1.0
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        bn.simulate_batch(offsets, js, grid)


AB = """
[spins.A]
offset_hz = -20.0
range_hz = [-30.0, -10.0]

[spins.B]
offset_hz = 20.0
range_hz = [10.0, 30.0]

[spins.C]
offset_hz = 60.0

[[coupling]]
spins = ["A", "B"]
j_hz = 8.0
range_hz = [2.0, 15.0]

[[coupling]]
spins = ["A", "C"]
j_hz = 3.0
"""


def test_calibrate_a_network_and_resume(tmp_path, allow_rank_promotion):
    path = tmp_path / "ab.toml"
    path.write_text(AB)
    spec = bn.load_spin_system(path)
    grid = bn.TimeGrid(60, 2e-3)
    kw = dict(sigma=0.05, sampler=bn.NUTS(chains=1, warmup=60, draws=60), rank_draws=30)
    res = bn.calibrate(grid, spec, n_datasets=3, checkpoint=tmp_path / "ck.json", **kw)
    assert res.names == ["offsets_hz[A]", "offsets_hz[B]", "j_hz[A-B]"]
    assert res.ranks.shape == (3, 3) and np.all((res.ranks >= 0) & (res.ranks <= 30))
    lo, hi = np.array([-30.0, 10.0, 2.0]), np.array([-10.0, 30.0, 15.0])
    assert np.all((res.truths > lo) & (res.truths < hi))
    assert np.all(np.abs(res.means - res.truths) < 5 * res.sds)  # posteriors around the truth
    again = bn.calibrate(grid, spec, n_datasets=3, checkpoint=tmp_path / "ck.json", **kw)
    np.testing.assert_array_equal(again.ranks, res.ranks)
    assert again.provenance["resumed"] == 3
    with pytest.raises(ValueError, match="known noise"):
        bn.calibrate(grid, spec, n_datasets=1, sampler=kw["sampler"], rank_draws=30)
    from bayesnmr._cli import main

    argv = ["sbc", "--system", str(path), "--sigma", "0.05", "--n", "60", "--dt", "0.002"]
    argv += ["--warmup", "60", "--draws", "60", "--datasets", "2", "--out", str(tmp_path / "c")]
    assert main(argv) == 0
    assert bn.SBCResult.load(tmp_path / "c" / "sbc.json").names == res.names


def test_typicality_skips_uncoupled_pairs(rng):
    offsets, j = random_network(rng, 6, density=0.4)
    system = bn.SpinSystem(offsets, j)
    grid = bn.TimeGrid(40, 1e-3)
    solver = bn.TypicalitySolver(n_vectors=8, seed=1)
    prepared = solver.prepare(system, grid)
    coupled = [(a, b) for a, b in system.pairs if j[a, b] != 0]
    assert list(prepared.pairs) == coupled and len(coupled) < 15
    import dataclasses

    every = dataclasses.replace(prepared, pairs=system.pairs)  # as it was: every pair
    pruned, full = prepared.observables(system, grid), every.observables(system, grid)
    _close(pruned, full, atol=1e-12)  # the zero couplings added nothing
    _close(bn.simulate(system, grid, solver), pruned, atol=1e-12)

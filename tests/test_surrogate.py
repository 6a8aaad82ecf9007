"""The surrogate: data shards, training, files, domain checks and transforms.

Everything here uses a tiny job (3 spins, 40 time points) and models trained in
seconds; the accuracy of the shipped models is checked at the end.
"""

import json
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesnmr as bn
from bayesnmr._surrogate import _files

GRID = bn.TimeGrid(40, 2e-3)
SPEC = bn.DataSpec(bn.Domain(3), GRID, n_samples=60, shard_size=20, seed=3)
TINY = bn.TrainConfig(width=32, depth=2, frame_steps=200, eval_every=100, batch_size=64)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    bn.generate_data(folder, SPEC, progress_bar=False)
    return folder


@pytest.fixture(scope="module")
def tiny(data_dir):
    return bn.train_surrogate(data_dir, TINY, progress_bar=False)


def test_shards_are_exact_and_addressable(data_dir, tmp_path):
    spec, thetas, traces = bn.load_training_data(data_dir)
    assert thetas.shape == (60, 4) and traces.shape == (60, 3, 40)
    assert np.all(thetas[:, :3] >= -100) and np.all(thetas[:, 3] <= 20)
    chain = bn.SpinChain(thetas[7, :3], thetas[7, 3])
    np.testing.assert_allclose(traces[7], bn.simulate(chain, GRID).as_array(), atol=1e-6)
    # One shard made alone, elsewhere, is the same shard.
    bn.generate_data(tmp_path, SPEC, shards=[2], progress_bar=False)
    with np.load(tmp_path / "shard-00002.npz") as a, np.load(data_dir / "shard-00002.npz") as b:
        np.testing.assert_array_equal(a["theta"], b["theta"])
        np.testing.assert_array_equal(a["traces"], b["traces"])


def test_interrupted_job_resumes_without_redoing_shards(data_dir, tmp_path):
    for name in ("manifest.json", "shard-00000.npz", "shard-00001.npz", "shard-00002.npz"):
        (tmp_path / name).write_bytes((data_dir / name).read_bytes())
    os.remove(tmp_path / "shard-00001.npz")
    with pytest.raises(ValueError, match=r"shards \[1\] of 3 are missing"):
        bn.load_training_data(tmp_path)
    (tmp_path / "shard-00002.npz").write_bytes(b"half a file")  # a foreign partial file
    before = os.stat(tmp_path / "shard-00000.npz").st_mtime_ns
    bn.generate_data(tmp_path, SPEC, progress_bar=False)
    assert os.stat(tmp_path / "shard-00000.npz").st_mtime_ns == before
    _, thetas, _ = bn.load_training_data(tmp_path)
    assert thetas.shape == (60, 4)


def test_folder_of_another_job_is_refused(data_dir):
    other = bn.DataSpec(bn.Domain(3), GRID, n_samples=60, shard_size=20, seed=4)
    with pytest.raises(ValueError, match="different generation job"):
        bn.generate_data(data_dir, other, progress_bar=False)
    with pytest.raises(ValueError, match="out of range"):
        bn.generate_data(data_dir, SPEC, shards=[3], progress_bar=False)


def test_dask_local_cluster_runs_a_tiny_job(data_dir, tmp_path):
    pytest.importorskip("distributed")
    bn.generate_data(tmp_path, SPEC, progress_bar=False, scheduler="local")
    _, a, ya = bn.load_training_data(tmp_path)
    _, b, yb = bn.load_training_data(data_dir)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(ya, yb, atol=1e-6)


def test_tiny_training_learns_and_records(tiny):
    meta = tiny.metadata
    assert tiny.architecture == "eigen"
    history = np.array([h[3] for h in meta["history"]])
    assert len(history) == 2
    # The kept weights are the best validated: the mean of the three median errors.
    val = meta["validation"]
    score = np.mean([val[k]["median"] for k in ("mx", "my", "iz1")])
    assert score == pytest.approx(min(history), rel=1e-4)
    # An untrained network is far worse than the trained one.
    untrained = _files.build_net("eigen", tiny.domain, GRID, 32, 2, jax.random.key(0))
    rep = bn.evaluate_surrogate(bn.Surrogate(untrained), n_samples=30)
    rep_t = bn.evaluate_surrogate(tiny, n_samples=30)
    assert rep_t["mx"]["median"] < 0.5 * rep["mx"]["median"]


def test_baseline_mlp_trains_on_traces(data_dir):
    cfg = bn.TrainConfig(architecture="mlp", width=32, depth=2, trace_steps=60, eval_every=30)
    sur = bn.train_surrogate(data_dir, cfg, progress_bar=False)
    assert sur.architecture == "mlp"
    tr = bn.simulate(bn.SpinChain([-20.0, 5.0, 30.0], 8.0), GRID, solver=sur)
    assert tr.mx.shape == (40,) and np.all(np.isfinite(tr.mx))


def test_checkpoint_resumes_and_refuses_another_run(data_dir, tmp_path):
    ckpt = tmp_path / "run.ckpt"
    a = bn.train_surrogate(data_dir, TINY, checkpoint=ckpt, progress_bar=False)
    assert ckpt.exists()
    # The run is finished: resuming from its checkpoint trains nothing and gives it back.
    b = bn.train_surrogate(data_dir, TINY, checkpoint=ckpt, progress_bar=False)
    theta = jnp.array([10.0, -20.0, 30.0, 5.0])
    np.testing.assert_array_equal(np.asarray(a.net(theta)), np.asarray(b.net(theta)))
    with pytest.raises(ValueError, match="another training run"):
        bn.train_surrogate(data_dir, TrainSeed1, checkpoint=ckpt, progress_bar=False)
    (tmp_path / "junk.ckpt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a bayesnmr training checkpoint"):
        bn.train_surrogate(data_dir, TINY, checkpoint=tmp_path / "junk.ckpt", progress_bar=False)


TrainSeed1 = bn.TrainConfig(
    width=32, depth=2, frame_steps=200, eval_every=100, batch_size=64, seed=1
)


def test_save_load_round_trip(tiny, tmp_path):
    path = bn.save_surrogate(tmp_path / "s.bnsur", tiny)
    back = bn.load_surrogate(path)
    chain = bn.SpinChain([-20.0, 5.0, 30.0], 8.0)
    np.testing.assert_array_equal(
        np.asarray(bn.simulate(chain, GRID, solver=tiny).as_array()),
        np.asarray(bn.simulate(chain, GRID, solver=back).as_array()),
    )
    assert back.metadata["validation"] == tiny.metadata["validation"]
    assert back.domain == tiny.domain and back.grid == tiny.grid


def _rewrite_header(path, **changes):
    raw = path.read_bytes()
    head, _, weights = raw[len(_files.MAGIC) :].partition(b"\n")
    header = json.loads(head) | changes
    path.write_bytes(_files.MAGIC + json.dumps(header).encode() + b"\n" + weights)


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda p: p.write_bytes(p.read_bytes()[:-10]), "checksum"),
        (lambda p: p.write_bytes(p.read_bytes()[:-1] + b"\x00"), "checksum"),
        (lambda p: p.write_bytes(b"PK\x03\x04 not ours"), "not a bayesnmr surrogate"),
        (lambda p: p.write_bytes(_files.MAGIC + b"{broken\n"), "metadata line"),
        (lambda p: _rewrite_header(p, format=99), "format 99"),
        (lambda p: _rewrite_header(p, width=64), "do not fit the architecture"),
        (lambda p: _rewrite_header(p, architecture="fno"), "unknown architecture"),
    ],
)
def test_bad_surrogate_files(tiny, tmp_path, spoil, message):
    path = bn.save_surrogate(tmp_path / "s.bnsur", tiny)
    spoil(path)
    with pytest.raises(ValueError, match=message):
        bn.load_surrogate(path)


def test_unknown_name_lists_the_shipped_models():
    with pytest.raises(ValueError, match="chain4"):
        bn.load_surrogate("chain5")


def test_out_of_domain_calls(tiny):
    inside = bn.SpinChain([-20.0, 5.0, 30.0], 8.0)
    with pytest.raises(ValueError, match=r"offsets_hz\[1\] = 150 Hz is outside \[-100, 100\]"):
        bn.simulate(bn.SpinChain([-20.0, 150.0, 30.0], 8.0), GRID, solver=tiny)
    with pytest.raises(ValueError, match="j_hz = 25 Hz is outside"):
        bn.simulate(bn.SpinChain([-20.0, 5.0, 30.0], 25.0), GRID, solver=tiny)
    with pytest.warns(bn.DomainWarning, match="j_hz = 25"):
        bn.simulate(bn.SpinChain([-20.0, 5.0, 30.0], 25.0), GRID, tiny.with_domain_check("warn"))
    with pytest.raises(ValueError, match="trained for chains of 3 spins"):
        bn.simulate(bn.SpinChain([-20.0, 5.0, 30.0, 40.0], 8.0), GRID, solver=tiny)
    with pytest.raises(ValueError, match=r"trained on TimeGrid\(n=40"):
        bn.simulate(inside, bn.TimeGrid(300, 1e-3), solver=tiny)
    with pytest.raises(ValueError, match="per-bond"):
        bn.simulate(bn.SpinChain([-20.0, 5.0, 30.0], [8.0, 9.0]), GRID, solver=tiny)


def test_prior_boxes_outside_the_domain_are_refused(tiny):
    data = bn.synthesize(bn.SpinChain([-20.0, 5.0, 30.0], 8.0), GRID, sigma=0.01, seed=0)
    ok = bn.Priors.around([-20.0, 5.0, 30.0], 10.0, j_hz=(0.0, 20.0))
    from bayesnmr._inference._model import model_kwargs

    model_kwargs(data, ok, tiny)
    wide = bn.Priors.around([-20.0, 5.0, 95.0], 10.0, j_hz=(0.0, 25.0))
    with pytest.raises(ValueError, match=r"offsets_hz\[2\] = \[85, 105\].*j_hz = \[0, 25\]"):
        model_kwargs(data, wide, tiny)


def test_surrogate_under_jit_vmap_grad(tiny):
    # A float64 copy, so that finite differences are accurate enough to compare with.
    tiny = jax.tree.map(lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, tiny)

    def mx_sum(offsets, j):
        return jnp.sum(bn.simulate(bn.SpinChain(offsets, j), GRID, solver=tiny).mx)

    off = jnp.array([-20.0, 5.0, 30.0])
    g = jax.jit(jax.grad(mx_sum))(off, 8.0)
    h = 1e-4
    fd = [
        (mx_sum(off.at[i].add(h), 8.0) - mx_sum(off.at[i].add(-h), 8.0)) / (2 * h) for i in range(3)
    ]
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-7)
    batch = jnp.stack([off, off + 10.0])
    out = jax.vmap(lambda o: bn.simulate(bn.SpinChain(o, 8.0), GRID, solver=tiny).mx)(batch)
    np.testing.assert_allclose(out[1], bn.simulate(bn.SpinChain(off + 10.0, 8.0), GRID, tiny).mx)


def test_eigen_head_keeps_sum_rules_and_symmetries():
    """Exact properties of the eigen-structured head, trained or not."""
    net = _files.build_net("eigen", bn.Domain(4), GRID, 16, 2, jax.random.key(1))
    sur = bn.Surrogate(net)
    off, j = np.array([-40.0, -10.0, 20.0, 45.0]), 12.5
    tr = bn.simulate(bn.SpinChain(off, j), GRID, solver=sur)
    np.testing.assert_allclose([tr.mx[0], tr.my[0], tr.iz1[0]], [1.0, 0.0, 1.0], atol=1e-12)
    # A common shift of every offset turns the FID by exp(i 2 pi c t) and leaves iz1.
    c = 7.0
    shifted = bn.simulate(bn.SpinChain(off + c, j), GRID, solver=sur)
    turn = np.exp(2j * np.pi * c * GRID.times)
    np.testing.assert_allclose(np.asarray(shifted.fid), np.asarray(tr.fid) * turn, atol=1e-9)
    np.testing.assert_allclose(shifted.iz1, tr.iz1, atol=1e-12)


@pytest.fixture(scope="module")
def shipped_reports():
    """Each shipped model against the exact solver on 100 held-out chains (seed 7)."""
    return {n: bn.evaluate_surrogate(bn.load_surrogate(n), n_samples=100, seed=7) for n in
            ("chain4", "chain8")}  # fmt: skip


# Regression guards at about 1.5x the level measured here (100 chains, seed 7: chain4
# median mx 0.20 %, my 0.22 %, iz1 - 1 2.0 %; chain8 4.1 %, 4.8 %, 13.8 %), on every
# observable, `iz1 - 1` included (iz1 itself is ~98 % constant, which flatters it).
@pytest.mark.parametrize(
    "name, n_spins, limits",
    [
        ("chain4", 4, {"mx": 0.003, "my": 0.0033, "iz1_minus_1": 0.03}),
        ("chain8", 8, {"mx": 0.062, "my": 0.072, "iz1_minus_1": 0.21}),
    ],
)
def test_shipped_models(shipped_reports, name, n_spins, limits):
    sur = bn.load_surrogate(name)
    assert sur.n_spins == n_spins and sur.architecture == "eigen"
    assert (sur.grid.n, sur.grid.dt) == (300, 1e-3)
    assert sur.domain == bn.Domain(n_spins, (-100.0, 100.0), (0.0, 20.0))
    rep = shipped_reports[name]
    for key, limit in limits.items():
        assert rep[key]["median"] <= limit, (key, rep[key]["median"])


def test_chain4_meets_its_target(shipped_reports):
    # The target for chain4: median <= 1 % in mx and my.
    rep = shipped_reports["chain4"]
    assert rep["mx"]["median"] <= 0.01 and rep["my"]["median"] <= 0.01


@pytest.mark.xfail(strict=True, reason="chain8 misses its target, median <= 3 % (4.1 %, 4.8 %)")
def test_chain8_meets_its_target(shipped_reports):
    rep = shipped_reports["chain8"]
    assert rep["mx"]["median"] <= 0.03 and rep["my"]["median"] <= 0.03


def test_check_box_takes_plain_arrays_and_priors_give_their_box(tiny):
    # Domain of `tiny`: offsets [-100, 100] Hz, J [0, 20] Hz, 3 spins.
    tiny.check_box(np.array([-50.0, -10.0, 0.0, 2.0]), np.array([50.0, 10.0, 90.0, 18.0]))
    with pytest.raises(ValueError, match=r"box offsets_hz\[2\] = \[0, 120\] reaches outside"):
        tiny.check_box(np.array([-50.0, -10.0, 0.0, 2.0]), np.array([50.0, 10.0, 120.0, 18.0]))
    with pytest.raises(ValueError, match=r"fixed j_hz = 25 Hz is outside \[0, 20\]"):
        tiny.check_box(np.array([-50.0, -10.0, 0.0, 25.0]), np.array([50.0, 10.0, 90.0, 25.0]))
    with pytest.raises(ValueError, match="per-bond"):
        tiny.check_box(np.zeros(5), np.ones(5), per_bond=True)
    with pytest.raises(ValueError, match="for 4 spins but the surrogate serves 3"):
        tiny.check_box(np.zeros(5), np.ones(5))
    bn.ExactSolver().check_box(np.zeros(5), np.ones(5))  # the exact solver serves any box
    priors = bn.Priors(
        offsets_hz=[(-50, 50), (-10, 10), (0, 90)], j_hz=(2, 18), fixed={"offsets_hz": [1, 2, 3]}
    )
    lower, upper = priors.box()
    np.testing.assert_array_equal(lower, [1, 2, 3, 2])
    np.testing.assert_array_equal(upper, [1, 2, 3, 18])
    priors.check_domain(tiny)
    with pytest.raises(ValueError, match="fixed offsets_hz"):
        bn.Priors([(-50, 50)] * 3, (2, 18), fixed={"offsets_hz": [1, 2, 300]}).check_domain(tiny)


def test_simulate_batch_checks_every_chain_against_the_domain(tiny):
    offsets = np.array([[-20.0, 5.0, 30.0], [-20.0, 150.0, 30.0]])
    with pytest.raises(ValueError, match=r"offsets_hz\[1\] = 150 Hz is outside"):
        bn.simulate_batch(offsets, 8.0, GRID, solver=tiny)
    tr = bn.simulate_batch(offsets[:1], 8.0, GRID, solver=tiny)
    one = bn.simulate(bn.SpinChain(offsets[0], 8.0), GRID, solver=tiny)
    np.testing.assert_allclose(tr.as_array()[0], one.as_array(), rtol=1e-6, atol=1e-7)


def test_natural_fit_with_a_shipped_surrogate_narrows_the_default_j_box():
    # Priors default J to [0, 25] Hz, the shipped surrogates were trained on [0, 20]: the
    # plain call must work (the default box narrowed, with a warning), a chosen box not.
    chain = bn.SpinChain([-40.0, -10.0, 20.0, 45.0], 12.5)
    data = bn.synthesize(chain, bn.TimeGrid(300, 1e-3), sigma=0.02, seed=1)
    sur = bn.load_surrogate("chain4")
    with pytest.warns(UserWarning, match=r"narrowed to \[0, 20\] Hz"):
        # 8 starts (not 48): what is tested is the box, and a start count keeps it a plain call.
        res = bn.fit(
            data, bn.Priors.around([-40.0, -10.0, 20.0, 45.0], 10.0), solver=sur, n_starts=8
        )
    assert abs(float(res.j_hz) - 12.5) < 0.5
    np.testing.assert_allclose(res.offsets_hz, chain.offsets_hz, atol=0.5)
    with pytest.raises(ValueError, match=r"box j_hz = \[0, 22\] reaches outside \[0, 20\]"):
        bn.fit(data, bn.Priors.around([-40.0, -10.0, 20.0, 45.0], 10.0, j_hz=(0, 22)), solver=sur)

"""Training: optax, a validation split, a schedule, early stopping and checkpoints."""

import dataclasses
import io
import json
import os
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from .._io import atomic_path
from ._data import DataSpec, load_training_data
from ._files import build_net
from ._metrics import iz1_deviation_errors, relative_errors
from ._solver import Surrogate

CKPT_MAGIC = b"bayesnmr-checkpoint\n"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    r"""How to train a surrogate.

    **Fields:**

    - `architecture`: `"eigen"` (the eigen-structured network) or `"mlp"` (the paper's
      baseline).
    - `width`, `depth`: hidden units per layer and hidden layers.
    - `frame_steps`: steps of the label-free first stage of `"eigen"`: parameters are
      drawn fresh from the domain every step and the loss is how far the predicted
      bases are from diagonalising $H$ (`EigenNet.frame_loss`). Ignored for `"mlp"`.
    - `trace_steps`: steps on the mean squared error of the exact traces (the only
      stage of `"mlp"`; a fine-tuning stage of `"eigen"`, 0 to skip).
    - `hard_fraction`: in the frame stage, the share of each batch drawn with one pair
      of offsets within $1.5\,J$ of each other (strong coupling, where the eigenbasis
      turns fastest and errors concentrate); the rest is uniform on the domain.
    - `batch_size`, `learning_rate` (the peak of a warm-up + cosine schedule).
    - `val_fraction`: the share of the data held out for validation and early stopping.
    - `eval_every`: steps between validations (and checkpoints); `patience`: the
      validations without improvement before a stage stops early.
    - `seed`: the seed of the initial weights, the split and the batches.
    """

    architecture: str = "eigen"
    width: int = 256
    depth: int = 3
    frame_steps: int = 30_000
    trace_steps: int = 0
    hard_fraction: float = 0.3
    batch_size: int = 256
    learning_rate: float = 2e-3
    val_fraction: float = 0.1
    eval_every: int = 500
    patience: int = 20
    seed: int = 0

    def __post_init__(self):
        for name in ("width", "depth", "batch_size", "eval_every", "patience"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"TrainConfig: `{name}` must be a positive integer, got {v!r}.")
        for name in ("frame_steps", "trace_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"TrainConfig: `{name}` must be an integer >= 0, got {v!r}.")
        if not 0 <= self.hard_fraction <= 1:
            raise ValueError(
                f"TrainConfig: `hard_fraction` must be in [0, 1], got {self.hard_fraction!r}."
            )
        if not (self.learning_rate > 0 and 0 < self.val_fraction < 1):
            raise ValueError(
                "TrainConfig: `learning_rate` must be positive and `val_fraction` in (0, 1), "
                f"got {self.learning_rate!r} and {self.val_fraction!r}."
            )

    def stages(self) -> list[tuple[str, int]]:
        if self.architecture == "mlp":
            return [("trace", self.trace_steps)]
        return [("frame", self.frame_steps), ("trace", self.trace_steps)]


@eqx.filter_jit
def _predict_batch(net, thetas):
    return jax.vmap(net)(thetas)


def _predict(net, thetas, batch: int = 500) -> np.ndarray:
    return np.concatenate(
        [
            np.asarray(_predict_batch(net, jnp.asarray(thetas[s : s + batch])))
            for s in range(0, len(thetas), batch)
        ]
    )


def _score(net, thetas, traces) -> float:
    """The validation score: the mean over observables of the median relative error."""
    return float(np.mean(np.median(relative_errors(_predict(net, thetas), traces), axis=0)))


def train_surrogate(
    data,
    config: TrainConfig = TrainConfig(),
    checkpoint: str | os.PathLike | None = None,
    progress_bar: bool = True,
    command: str | None = None,
    init=None,
) -> Surrogate:
    """Train a surrogate on a generated data folder.

    **Arguments:**

    - `data`: a folder made by `generate` (or `bayesnmr generate`).
    - `config`: the `TrainConfig`.
    - `checkpoint`: a file to save the state to after every validation (atomically);
      if it exists, training resumes from it. It must come from the same data and
      config.
    - `progress_bar`: show a progress bar with the losses.
    - `command`: how the training was launched, recorded in the metadata.
    - `init`: a `Surrogate` (or its file) to start from instead of random weights, to
      train a model further; its architecture, width, depth, domain and grid must match.

    **Returns:** the `Surrogate` with the best validation score, with its training record
    (config, data spec, history, held-out errors) in `surrogate.metadata`.
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"Argument `config` must be a TrainConfig, got {type(config).__name__}.")
    spec, thetas, traces = load_training_data(data)
    if sum(n for _, n in config.stages()) == 0:
        raise ValueError(
            "TrainConfig: every stage has 0 steps; set `frame_steps` (eigen) or `trace_steps`."
        )
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(thetas))
    n_val = max(1, int(round(config.val_fraction * len(thetas))))
    if len(thetas) - n_val < 1:
        raise ValueError(f"{data} holds {len(thetas)} samples: too few to split for validation.")
    val, tr = order[:n_val], order[n_val:]
    th_tr, y_tr = thetas[tr].astype(np.float32), traces[tr].astype(np.float32)
    th_val, y_val = thetas[val].astype(np.float32), traces[val]
    # Validation on at most 1000 trajectories keeps it cheap; the final report uses all.
    th_v, y_v = th_val[:1000], y_val[:1000]

    key = jax.random.key(config.seed)
    net = build_net(config.architecture, spec.domain, spec.grid, config.width, config.depth, key)
    ident = {"config": dataclasses.asdict(config), "data": spec.to_dict()}
    if init is not None:
        net, ident["init"] = _initial_weights(init, net, spec, config)
    state = {"stage": 0, "step": 0, "best": float("inf"), "bad": 0, "history": []}
    opt_state, best_net = None, net
    if checkpoint is not None and Path(checkpoint).exists():
        net, best_net, opt_state, state = _load_checkpoint(checkpoint, net, ident, config)

    for stage_index, (stage, n_steps) in enumerate(config.stages()):
        if stage_index < state["stage"] or n_steps == 0:
            continue
        optim = optax.chain(
            optax.clip_by_global_norm(1.0),
            optax.adam(
                optax.warmup_cosine_decay_schedule(
                    config.learning_rate / 20,
                    config.learning_rate,
                    min(200, n_steps // 10 + 1),
                    n_steps,
                    config.learning_rate * 1e-3,
                )
            ),
        )
        if opt_state is None:
            opt_state = optim.init(eqx.filter(net, eqx.is_array))
        step_fn = _make_step(optim, stage, spec, config, th_tr, y_tr)
        bar = tqdm(
            range(state["step"], n_steps),
            initial=state["step"],
            total=n_steps,
            disable=not progress_bar,
            desc=f"train {config.architecture} ({stage})",
        )
        for step in bar:
            net, opt_state, loss = step_fn(net, opt_state, jax.random.fold_in(key, step + 1))
            if (step + 1) % config.eval_every == 0 or step + 1 == n_steps:
                score = _score(net, th_v, y_v)
                state["history"].append([stage, step + 1, float(loss), score])
                if score < state["best"]:
                    state["best"], state["bad"], best_net = score, 0, net
                else:
                    state["bad"] += 1
                state["step"] = step + 1
                bar.set_postfix(
                    loss=f"{float(loss):.3g}", val=f"{score:.3%}", best=f"{state['best']:.3%}"
                )
                if checkpoint is not None:
                    _save_checkpoint(checkpoint, net, best_net, opt_state, state, ident)
                if state["bad"] >= config.patience:
                    bar.write(
                        f"{stage}: no improvement in {config.patience} validations; stopping early"
                    )
                    break
        bar.close()
        net, opt_state = best_net, None
        state.update(stage=stage_index + 1, step=0, bad=0)
        if checkpoint is not None:
            _save_checkpoint(checkpoint, net, best_net, opt_state, state, ident)

    pred = _predict(best_net, th_val)
    err, iz1_dev = relative_errors(pred, y_val), iz1_deviation_errors(pred, y_val)
    info = {
        **ident,
        "width": config.width,
        "depth": config.depth,
        "history": state["history"],
        "validation": _summary(err, iz1_dev, len(val)),
        "command": command,
    }
    return Surrogate(best_net, "raise", json.dumps(info))


def _initial_weights(init, like, spec: DataSpec, config: TrainConfig):
    from ._files import load_surrogate

    start = init if isinstance(init, Surrogate) else load_surrogate(init)
    meta = start.metadata
    theirs = (start.architecture, meta.get("width"), meta.get("depth"))
    ours = (config.architecture, config.width, config.depth)
    if theirs != ours:
        raise ValueError(
            f"Argument `init`: the model is {theirs} (architecture, width, depth) but the "
            f"config asks for {ours}."
        )
    if start.domain != spec.domain or start.grid != spec.grid:
        raise ValueError(
            "Argument `init`: the model was trained for another domain or grid than these data."
        )
    # Continue in float32, like a fresh network, whatever the file's dtype.
    net = jax.tree.map(lambda a, b: a.astype(b.dtype) if eqx.is_array(a) else a, start.net, like)
    return net, {"history": meta.get("history"), "command": meta.get("command")}


def _summary(err: np.ndarray, iz1_dev: np.ndarray, n: int) -> dict:
    out = {"n": n}
    for i, name in enumerate(("mx", "my", "iz1")):
        out[name] = {
            "median": float(np.median(err[:, i])),
            "p95": float(np.percentile(err[:, i], 95)),
        }
    out["iz1_minus_1"] = {
        "median": float(np.nanmedian(iz1_dev)),
        "p95": float(np.nanpercentile(iz1_dev, 95)),
    }
    return out


def sample_frames(domain, key, batch: int, hard_fraction: float, dtype=jnp.float32):
    """Parameters for the frame stage: uniform, except a `hard_fraction` of the batch
    where one random pair of offsets lies within 1.5 J of each other."""
    k0, k1, k2, k3 = jax.random.split(key, 4)
    th = domain.sample(k0, batch, dtype)
    n = domain.n_spins
    rows = jnp.arange(batch)
    i = jax.random.randint(k1, (batch,), 0, n)
    partner = (i + jax.random.randint(k2, (batch,), 1, n)) % n
    shift = jax.random.uniform(k3, (batch,), dtype, -1.5, 1.5) * th[:, n]
    boxes = jnp.asarray(domain.offset_boxes, dtype)
    hard = th.at[rows, partner].set(
        jnp.clip(th[rows, i] + shift, boxes[partner, 0], boxes[partner, 1])
    )
    pick = rows < int(round(hard_fraction * batch))
    return jnp.where(pick[:, None], hard, th)


def _make_step(optim, stage: str, spec: DataSpec, config: TrainConfig, th_tr, y_tr):
    th_all, y_all = jnp.asarray(th_tr), jnp.asarray(y_tr)
    domain, batch = spec.domain, config.batch_size

    def loss_fn(net, key):
        if stage == "frame":
            th = sample_frames(domain, key, batch, config.hard_fraction, th_all.dtype)
            return jnp.mean(jax.vmap(net.frame_loss)(th))
        idx = jax.random.randint(key, (batch,), 0, th_all.shape[0])
        pred = jax.vmap(net)(th_all[idx])
        return jnp.mean((pred - y_all[idx]) ** 2)

    @eqx.filter_jit
    def step(net, opt_state, key):
        loss, grads = eqx.filter_value_and_grad(loss_fn)(net, key)
        updates, opt_state = optim.update(grads, opt_state, eqx.filter(net, eqx.is_array))
        return eqx.apply_updates(net, updates), opt_state, loss

    return step


def _save_checkpoint(path, net, best_net, opt_state, state, ident) -> None:
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, (net, best_net, opt_state))
    header = json.dumps({"ident": ident, "state": state, "has_opt": opt_state is not None})
    with atomic_path(path) as tmp:
        tmp.write_bytes(CKPT_MAGIC + header.encode() + b"\n" + buf.getvalue())


def _load_checkpoint(path, net, ident, config: TrainConfig):
    raw = Path(path).read_bytes()
    head, _, body = raw[len(CKPT_MAGIC) :].partition(b"\n")
    try:
        if not raw.startswith(CKPT_MAGIC):
            raise ValueError
        meta = json.loads(head)
    except ValueError:
        raise ValueError(
            f"Checkpoint {path} is not a bayesnmr training checkpoint; delete it or pass another "
            "`checkpoint` path."
        ) from None
    if meta["ident"] != json.loads(json.dumps(ident)):
        raise ValueError(
            f"Checkpoint {path} belongs to another training run (different data or config); "
            "repeat that run's arguments to resume it, or pass another `checkpoint` path."
        )
    state = meta["state"]
    stage_name, n_steps = (config.stages() + [("done", 0)])[state["stage"]]
    optim_like = None
    if meta["has_opt"]:
        optim_like = optax.chain(
            optax.clip_by_global_norm(1.0),
            optax.adam(optax.warmup_cosine_decay_schedule(1.0, 1.0, 1, max(n_steps, 2), 1.0)),
        ).init(eqx.filter(net, eqx.is_array))
    try:
        net, best_net, opt_state = eqx.tree_deserialise_leaves(
            io.BytesIO(body), (net, net, optim_like)
        )
    except (ValueError, RuntimeError) as e:
        raise ValueError(f"Checkpoint {path} is corrupt: {e}") from None
    return net, best_net, opt_state, state

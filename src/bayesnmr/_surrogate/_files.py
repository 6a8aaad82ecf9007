"""Surrogate files: one JSON header line of metadata, then the Equinox weights.

Layout: the line `bayesnmr-surrogate`, one line of JSON, then the bytes written by
`eqx.tree_serialise_leaves`. The header holds the file format, the package version,
the architecture and its hyperparameters, N, the grid, the domain, the training record,
and the SHA-256 of the weights, so a truncated or altered file is caught on load.
"""

import hashlib
import io
import json
import os
from importlib import resources
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp

from .._io import atomic_path
from .._physics._grid import TimeGrid
from ._domain import Domain
from ._local import empty_line_net
from ._nets import ARCHITECTURES
from ._solver import Surrogate

MAGIC = b"bayesnmr-surrogate\n"
FORMAT = 1
SUFFIX = ".bnsur"


def build_net(architecture: str, domain: Domain, grid: TimeGrid, width: int, depth: int, key):
    """An untrained network of the named architecture, in float32."""
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"Argument `architecture` must be one of {sorted(ARCHITECTURES)}, got {architecture!r}."
        )
    net = ARCHITECTURES[architecture](domain, grid, width, depth, key=key)
    return jax.tree.map(lambda x: x.astype(jnp.float32) if eqx.is_inexact_array(x) else x, net)


def untrained_surrogate(
    architecture: str, domain: Domain, grid: TimeGrid, *, width: int, depth: int, seed: int = 0
) -> Surrogate:
    """A surrogate with random (untrained) weights: for timing an architecture, or as the
    start of a custom training loop. `architecture`: `"eigen"` or `"mlp"`."""
    net = build_net(architecture, domain, grid, width, depth, jax.random.PRNGKey(seed))
    return Surrogate(net)


def save_surrogate(path: str | os.PathLike, surrogate: Surrogate) -> Path:
    """Write `surrogate` to `path` atomically (a complete file or none)."""
    from importlib.metadata import version

    __version__ = version("bayesnmr")
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, surrogate.net)
    weights = buf.getvalue()
    meta = surrogate.metadata
    header = {
        "format": FORMAT,
        "bayesnmr_version": __version__,
        "architecture": surrogate.architecture,
        "width": meta.get("width"),
        "depth": meta.get("depth"),
        "domain": surrogate.domain.to_dict(),
        "grid": {"n": surrogate.grid.n, "dt": surrogate.grid.dt},
        "sha256": hashlib.sha256(weights).hexdigest(),
        "info": meta,
    }
    if surrogate.architecture == "lines":  # the shapes of its arrays, to load them into
        header["lines"] = [len(surrogate.net.fid_freq), len(surrogate.net.iz1_freq)]
    with atomic_path(path) as tmp:
        tmp.write_bytes(MAGIC + json.dumps(header).encode() + b"\n" + weights)
    return Path(path)


def shipped() -> dict[str, Path]:
    """The pretrained surrogates shipped in the package, by name."""
    folder = resources.files("bayesnmr") / "_surrogate" / "pretrained"
    return {
        p.name.removesuffix(SUFFIX): Path(str(p))
        for p in folder.iterdir()
        if p.name.endswith(SUFFIX)
    }


def load_surrogate(name_or_path: str | os.PathLike) -> Surrogate:
    """Load a surrogate: a shipped one by name (`"chain4"`, `"chain8"`) or a saved file.

    Raises `ValueError` with the reason for a missing, foreign, corrupt or incompatible
    file.
    """
    models = shipped()
    if isinstance(name_or_path, str) and name_or_path in models:
        path = models[name_or_path]
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise ValueError(
                f"No surrogate named {str(name_or_path)!r}: it is neither a shipped model "
                f"({', '.join(sorted(models)) or 'none'}) nor an existing file."
            )
    raw = path.read_bytes()
    if not raw.startswith(MAGIC):
        raise ValueError(f"{path} is not a bayesnmr surrogate file (no `bayesnmr-surrogate` line).")
    head, sep, weights = raw[len(MAGIC) :].partition(b"\n")
    try:
        header = json.loads(head)
        arch, fmt = header["architecture"], header["format"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{path} is corrupt: its metadata line cannot be read.") from None
    if fmt != FORMAT:
        raise ValueError(
            f"{path} has surrogate file format {fmt} (written by bayesnmr "
            f"{header.get('bayesnmr_version', '?')}); this bayesnmr reads format {FORMAT}. "
            "Retrain it with this version (`bayesnmr train`)."
        )
    if not sep or hashlib.sha256(weights).hexdigest() != header.get("sha256"):
        raise ValueError(
            f"{path} is corrupt: its weights do not match the checksum in its header "
            "(truncated or altered). Restore the file or retrain."
        )
    if arch not in ARCHITECTURES and arch != "lines":
        raise ValueError(
            f"{path} holds an unknown architecture {arch!r}; this bayesnmr knows "
            f"{sorted(ARCHITECTURES)}."
        )
    try:
        domain = Domain.from_dict(header["domain"])
        grid = TimeGrid(int(header["grid"]["n"]), float(header["grid"]["dt"]))
        if arch == "lines":
            like = empty_line_net(domain.n_spins, grid, *(int(x) for x in header["lines"]))
        else:
            like = build_net(
                arch, domain, grid, int(header["width"]), int(header["depth"]), jax.random.key(0)
            )
        net = eqx.tree_deserialise_leaves(io.BytesIO(weights), like)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ValueError(
            f"{path}: the weights do not fit the architecture its header describes "
            f"({arch}, width {header.get('width')}, depth {header.get('depth')}): {e}"
        ) from None
    return Surrogate(net, "raise", json.dumps(header["info"]))

"""Spin systems in a plain-text TOML file: names, shifts, couplings and prior boxes.

```toml
spectrometer_mhz = 400.0   # needed when a shift is in ppm
carrier_ppm = 7.10         # optional: default the centre of the ppm shifts
t2_s = 0.5                 # optional
iz_spin = "H1"             # optional: whose polarisation `iz1` follows (default the first)

[spins.H1]
shift_ppm = 7.26           # or offset_hz = ...
range_ppm = [7.22, 7.30]   # optional prior box for fits (or range_hz); absent: fixed

[[coupling]]
spins = ["H1", "H2"]
j_hz = 8.0
range_hz = [6.0, 10.0]     # optional prior box; absent: fixed at j_hz

[[coupling]]
spins = ["H3", "H4"]
same_as = ["H1", "H2"]     # tied: equal to that coupling (by symmetry, say)
```

Pairs not listed are uncoupled (J = 0, fixed). TOML is read by Python's own `tomllib`,
the format of `pyproject.toml`; names and keys are checked, and every error names the
entry and the fix.
"""

import dataclasses
import math
import os
import tomllib
from pathlib import Path

import numpy as np

from .._io import atomic_path
from ._system import SpinSystem

_TOP = {"spectrometer_mhz", "carrier_ppm", "t2_s", "iz_spin", "spins", "coupling"}
_SPIN = {"shift_ppm", "offset_hz", "range_ppm", "range_hz"}
_COUPLING = {"spins", "j_hz", "range_hz", "same_as"}


@dataclasses.dataclass(frozen=True)
class Coupling:
    """One listed coupling: the spins `pair` (indices from 0), its value in Hz, and how a
    fit treats it: a prior `box` (lo, hi) in Hz, or `None` (fixed); `tied_to` the pair
    whose coupling it equals (then it has no parameter of its own)."""

    pair: tuple[int, int]
    j_hz: float
    box: tuple[float, float] | None = None
    tied_to: tuple[int, int] | None = None


@dataclasses.dataclass(frozen=True)
class SystemSpec:
    """A spin system read from a file (`bn.load_spin_system`).

    **Fields:**

    - `system`: the `SpinSystem` at the file's values (offsets in Hz from the carrier).
    - `names`: the spins' names, in the file's order.
    - `offset_boxes`: per spin, a prior box (lo, hi) in Hz, or `None` (fixed).
    - `couplings`: the listed couplings (`Coupling`); unlisted pairs are 0 and fixed.
    - `spectrometer_mhz`, `carrier_ppm`: the field and carrier when the file used ppm.
    """

    system: SpinSystem
    names: tuple[str, ...]
    offset_boxes: tuple[tuple[float, float] | None, ...]
    couplings: tuple[Coupling, ...]
    spectrometer_mhz: float | None = None
    carrier_ppm: float | None = None

    @property
    def n_spins(self) -> int:
        return len(self.names)


def _fail(path, where: str, what: str) -> ValueError:
    return ValueError(f"{str(path)!r}, {where}: {what}")


def _number(path, where, key, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(path, where, f"`{key}` must be a finite number, but is {value!r}.")
    return float(value)


def _box(path, where, key, value) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise _fail(path, where, f"`{key}` must be a list [lo, hi], but is {value!r}.")
    lo, hi = (_number(path, where, key, v) for v in value)
    if not lo < hi:
        raise _fail(path, where, f"`{key}` = {value} needs lo < hi.")
    return lo, hi


def _unknown(path, where, table: dict, allowed: set) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise _fail(path, where, f"unknown key(s) {extra}; allowed: {sorted(allowed)}.")


def load_spin_system(path: str | os.PathLike) -> SystemSpec:
    """Read a spin system from a TOML file (the format is in the module's doc and in
    [Spin systems](spin-systems.md)). Shifts in ppm become offsets in Hz from the
    carrier at `spectrometer_mhz`; prior boxes in ppm become boxes in Hz."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No spin-system file at {str(path)!r}.")
    try:
        doc = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"Cannot read {str(path)!r} as TOML: {err}.") from None
    _unknown(path, "top level", doc, _TOP)
    spins = doc.get("spins")
    if not isinstance(spins, dict) or not spins:
        raise _fail(path, "top level", "it needs a table [spins.NAME] for every spin.")
    names = tuple(spins)
    index = {name: i for i, name in enumerate(names)}
    mhz = doc.get("spectrometer_mhz")
    if mhz is not None:
        mhz = _number(path, "top level", "spectrometer_mhz", mhz)
        if mhz <= 0:
            raise _fail(path, "top level", f"`spectrometer_mhz` must be positive, not {mhz}.")
    ppm = [s.get("shift_ppm") for s in spins.values() if isinstance(s, dict)]
    ppm = [_number(path, "spins", "shift_ppm", v) for v in ppm if v is not None]
    carrier = doc.get("carrier_ppm")
    if carrier is not None:
        carrier = _number(path, "top level", "carrier_ppm", carrier)
    elif ppm:
        carrier = 0.5 * (max(ppm) + min(ppm))
    offsets, boxes = [], []
    for name, s in spins.items():
        where = f"[spins.{name}]"
        if not isinstance(s, dict):
            raise _fail(path, where, "must be a table with shift_ppm or offset_hz.")
        _unknown(path, where, s, _SPIN)
        if ("shift_ppm" in s) == ("offset_hz" in s):
            raise _fail(path, where, "give exactly one of `shift_ppm` and `offset_hz`.")
        if ("shift_ppm" in s or "range_ppm" in s) and mhz is None:
            raise _fail(path, where, "a shift in ppm needs `spectrometer_mhz` at the top level.")
        if "range_ppm" in s and "range_hz" in s:
            raise _fail(path, where, "give at most one of `range_ppm` and `range_hz`.")
        if "shift_ppm" in s:
            offsets.append((_number(path, where, "shift_ppm", s["shift_ppm"]) - carrier) * mhz)
        else:
            offsets.append(_number(path, where, "offset_hz", s["offset_hz"]))
        box = None
        if "range_hz" in s:
            box = _box(path, where, "range_hz", s["range_hz"])
        elif "range_ppm" in s:
            lo, hi = _box(path, where, "range_ppm", s["range_ppm"])
            box = ((lo - carrier) * mhz, (hi - carrier) * mhz)
        if box is not None and not box[0] <= offsets[-1] <= box[1]:
            raise _fail(path, where, f"the value lies outside its prior box {box} (Hz).")
        boxes.append(box)

    def pair_of(where, key, value) -> tuple[int, int]:
        if not isinstance(value, list) or len(value) != 2:
            raise _fail(path, where, f"`{key}` must name two spins, but is {value!r}.")
        missing = [v for v in value if v not in index]
        if missing:
            raise _fail(
                path,
                where,
                f"`{key}` names unknown spin(s) {missing}; the spins are {list(names)}.",
            )
        i, k = sorted(index[v] for v in value)
        if i == k:
            raise _fail(path, where, f"`{key}` couples a spin to itself ({value}).")
        return i, k

    raw = doc.get("coupling", [])
    if not isinstance(raw, list):
        raise _fail(path, "top level", "couplings are [[coupling]] tables.")
    listed: dict[tuple[int, int], dict] = {}
    for m, c in enumerate(raw):
        where = f"coupling {m + 1}"
        if not isinstance(c, dict):
            raise _fail(path, where, "must be a [[coupling]] table.")
        _unknown(path, where, c, _COUPLING)
        pair = pair_of(where, "spins", c.get("spins"))
        where = f"coupling {names[pair[0]]}-{names[pair[1]]}"
        if pair in listed:
            raise _fail(path, where, "is listed twice.")
        if "same_as" in c and "range_hz" in c:
            raise _fail(path, where, "a tied coupling (`same_as`) takes its box from the other.")
        if "same_as" not in c and "j_hz" not in c:
            raise _fail(path, where, "needs `j_hz` (or `same_as`, to tie it to another).")
        listed[pair] = {
            "j": None if "j_hz" not in c else _number(path, where, "j_hz", c["j_hz"]),
            "box": _box(path, where, "range_hz", c["range_hz"]) if "range_hz" in c else None,
            "tie": pair_of(where, "same_as", c["same_as"]) if "same_as" in c else None,
            "where": where,
        }
    couplings = []
    for pair, c in listed.items():
        root, seen = pair, [pair]
        while listed[root]["tie"] is not None:
            root = listed[root]["tie"]
            if root not in listed:
                raise _fail(
                    path,
                    c["where"],
                    f"is tied (`same_as`) to {names[root[0]]}-{names[root[1]]}, which is not "
                    "listed; add that coupling as a [[coupling]] with its `j_hz`.",
                )
            if root in seen:
                raise _fail(path, c["where"], "its `same_as` ties form a loop.")
            seen.append(root)
        j = listed[root]["j"]
        if c["j"] is not None and c["j"] != j:
            raise _fail(path, c["where"], f"is tied to a coupling of {j} Hz but gives {c['j']}.")
        if c["box"] is not None and not c["box"][0] <= j <= c["box"][1]:
            raise _fail(path, c["where"], f"the value lies outside its prior box {c['box']}.")
        couplings.append(Coupling(pair, j, c["box"], None if root == pair else root))
    n = len(names)
    jm = np.zeros((n, n))
    for c in couplings:
        jm[c.pair] = jm[c.pair[::-1]] = c.j_hz
    iz = doc.get("iz_spin", names[0])
    if iz not in index:
        raise _fail(path, "top level", f"`iz_spin` = {iz!r} is not one of the spins {list(names)}.")
    t2 = doc.get("t2_s")
    t2 = None if t2 is None else _number(path, "top level", "t2_s", t2)
    system = SpinSystem(np.array(offsets), jm, t2, iz_spin=index[iz] + 1, names=names)
    return SystemSpec(system, names, tuple(boxes), tuple(couplings), mhz, carrier)


def save_spin_system(spec: SystemSpec, path: str | os.PathLike) -> Path:
    """Write `spec` as a TOML file that `load_spin_system` reads back (atomically).
    Offsets and boxes are written in Hz."""
    if not isinstance(spec, SystemSpec):
        raise ValueError(
            f"Argument `spec` must be a `SystemSpec` (from `bn.load_spin_system` or "
            f"`bn.system_spec`), but is a {type(spec).__name__}."
        )
    s = spec.system
    lines = [f"iz_spin = {_quote(spec.names[s.iz_spin - 1])}"]
    if spec.spectrometer_mhz is not None:  # for the record: offsets below are in Hz
        lines.append(f"spectrometer_mhz = {spec.spectrometer_mhz!r}")
        lines.append(f"carrier_ppm = {spec.carrier_ppm!r}")
    if s.t2_s is not None:
        lines.append(f"t2_s = {float(s.t2_s)!r}")
    for name, nu, box in zip(spec.names, np.asarray(s.offsets_hz), spec.offset_boxes, strict=True):
        lines += ["", f"[spins.{_quote(name)}]", f"offset_hz = {float(nu)!r}"]
        if box is not None:
            lines.append(f"range_hz = [{box[0]!r}, {box[1]!r}]")
    for c in spec.couplings:
        a, b = (_quote(spec.names[i]) for i in c.pair)
        lines += ["", "[[coupling]]", f"spins = [{a}, {b}]", f"j_hz = {c.j_hz!r}"]
        if c.tied_to is not None:
            ta, tb = (_quote(spec.names[i]) for i in c.tied_to)
            lines.append(f"same_as = [{ta}, {tb}]")
        elif c.box is not None:
            lines.append(f"range_hz = [{c.box[0]!r}, {c.box[1]!r}]")
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    return Path(path)


def system_spec(system: SpinSystem, offset_boxes=None, coupling_boxes=None) -> SystemSpec:
    """A `SystemSpec` of `system`: every non-zero coupling listed, with the prior boxes
    given (`offset_boxes`: `(N, 2)` in Hz, `None` for all fixed, or a list with `None`
    for each fixed one; `coupling_boxes`:
    `{(i, j): (lo, hi)}` with spins counted from 0), the rest fixed."""
    if not isinstance(system, SpinSystem):
        raise ValueError(f"Argument `system` must be a `bn.SpinSystem`, not {type(system)}.")
    n = system.n_spins
    names = system.names or tuple(f"S{i + 1}" for i in range(n))
    boxes = (
        (None,) * n
        if offset_boxes is None
        else tuple(None if b is None else tuple(map(float, b)) for b in offset_boxes)
    )
    jm = np.asarray(system.j_hz)
    coupling_boxes = coupling_boxes or {}
    couplings = tuple(
        Coupling((i, k), float(jm[i, k]), coupling_boxes.get((i, k)))
        for i, k in system.pairs
        if jm[i, k] != 0 or (i, k) in coupling_boxes
    )
    return SystemSpec(system, names, boxes, couplings)


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'

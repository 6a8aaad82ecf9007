"""Argument parsing shared by the command-line modules."""

import argparse

DEFAULT_OFFSETS = [-40.0, -10.0, 20.0, 45.0]
DEFAULT_J = 12.5


def _parse_floats(text: str, name: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"`--{name}` takes comma-separated numbers, got {text!r}.") from None


def _range(text: str, name: str) -> tuple[float, float]:
    vals = _parse_floats(text, name)
    if len(vals) != 2:
        raise ValueError(f"`--{name}` takes two comma-separated numbers lo,hi, got {text!r}.")
    return (vals[0], vals[1])


def _shard_list(text: str) -> list[int] | None:
    if not text:
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ValueError:
        raise ValueError(
            f"`--shards` takes indices and ranges like 0-9,12, got {text!r}."
        ) from None
    return out


def _add_dask_option(p: argparse.ArgumentParser, what: str, workers: str) -> None:
    p.add_argument(
        "--dask",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help=f"run {what} on Dask: a LocalCluster ({workers}), or the scheduler at ADDRESS",
    )

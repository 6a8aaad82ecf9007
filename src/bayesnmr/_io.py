"""Atomic file writing: a file is either complete or absent, never half-written."""

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix)
    os.close(fd)
    # mkstemp makes the file private (0600); give it the permissions of a normal new file.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save a matplotlib figure atomically and return its path."""
    with atomic_path(path) as tmp:
        fig.savefig(
            tmp, dpi=dpi, bbox_inches="tight", format=Path(path).suffix.lstrip(".") or "png"
        )
    return Path(path)


def write_json(path: str | os.PathLike, obj, indent: int = 1) -> Path:
    """Write `obj` as JSON atomically (a complete file or none) and return its path."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=indent))
    return Path(path)

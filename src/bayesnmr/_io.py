"""Files: written atomically (complete or absent, never half-written), and what a result
records about where it was made."""

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


def provenance() -> dict:
    """Where and when a result was made: the date, the git commit of the package's source
    when it is a git checkout (else None), the CPU, cores, memory, Python and the versions
    that matter. Results files (`SBCResult`, the benchmarks' JSON) record it."""
    import platform
    import subprocess
    import time
    from importlib import metadata

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for pkg in ("bayesnmr", "jax", "jaxlib", "equinox", "diffrax", "numpyro", "numpy", "qutip"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
        commit = done.stdout.strip() or None if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        commit = None
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        memory = None
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "commit": commit,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": None if memory is None else round(memory, 1),
        "python": platform.python_version(),
        "versions": versions,
    }

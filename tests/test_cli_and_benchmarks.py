"""The command line and the benchmark's quick mode."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bayesnmr._cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_simulate_then_fit(tmp_path, capsys):
    data = tmp_path / "d.nc"
    assert (
        main(["simulate", "--offsets=-30,25", "--j", "9", "--sigma", "0.01", "--out", str(data)])
        == 0
    )
    assert data.is_file()
    assert main(["fit", str(data), "--starts", "2", "--steps", "15"]) == 0
    out = capsys.readouterr().out
    assert "j_hz" in out and "Laplace" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "missing.nc"], "No data file"),
        (["simulate", "--offsets", "1,x"], "`--offsets` takes comma-separated numbers"),
        (["simulate", "--sigma", "-1"], "`sigma` must be finite and >= 0"),
        (["simulate", "--offsets", "1,2,3", "--j", "1,2,3"], "`j_hz` must be a scalar or an array"),
    ],
)
def test_cli_errors_are_one_clear_line(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_fit_with_wrong_number_of_offsets(tmp_path, capsys):
    data = tmp_path / "d.nc"
    main(["simulate", "--offsets=-30,25", "--j", "9", "--out", str(data)])
    assert main(["fit", str(data), "--offsets", "1,2,3"]) == 2
    assert "gives 3 values but the data are for 2 spins" in capsys.readouterr().err


def test_scaling_benchmark_quick(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "scaling.py"),
            "--quick",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    results = json.loads((tmp_path / "scaling.json").read_text())
    methods = {r["method"] for r in results["runs"]}
    assert {"dense", "qutip", "diffrax", "exact"} <= methods
    assert all(r["seconds"] > 0 for r in results["runs"] if r["method"] != "baseline")
    assert (tmp_path / "scaling.png").stat().st_size > 10_000

"""Smoke runs of the benchmark scripts with tiny sizes: they run and print their table (no timing checks)."""

import importlib.util
import sys
import warnings

import pytest

from .conftest import ROOT

TINY = ["--quick", "--rows", "200", "--baseline-rows", "5"]


@pytest.fixture(scope="module")
def bench_engine():
    path = ROOT / "benchmarks" / "bench_engine.py"
    spec = importlib.util.spec_from_file_location("bench_engine", path)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is created
    sys.modules["bench_engine"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("bench_engine", None)


def _table(out, header):
    """Return the printed table's rows as lists of cells, after checking its header line."""
    lines = [line for line in out.splitlines() if line.startswith("|")]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    assert cells[0] == list(header)
    return cells[2:]


def test_bench_engine_quick_against_pgmpy(bench_engine, capsys):
    assert bench_engine.main([*TINY, "--tools", "pgmpy"]) == 0
    table = _table(capsys.readouterr().out, bench_engine.HEADER)
    assert {row[0] for row in table} == {"default cohort", "complete rows", "distinct soft evidence", "alarm"}
    assert {row[1] for row in table} == {"bayescramp Model.score", "bayescramp engine.propagate", "pgmpy VE per row",
                                         "pgmpy predict_probability", "pgmpy VE per target"}


def test_bench_engine_quick_against_pyagrum(bench_engine, capsys):
    # pyAgrum's SWIG extension warns while it initialises; as an error it crashes the interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pytest.importorskip("pyagrum")
    assert bench_engine.main([*TINY, "--tools", "pyagrum"]) == 0
    table = _table(capsys.readouterr().out, bench_engine.HEADER)
    assert [row[0] for row in table if row[1] == "pyAgrum LazyPropagation"] == [
        "default cohort", "distinct soft evidence", "alarm"]


def test_bench_prevalence_quick_against_samplics(capsys):
    path = ROOT / "benchmarks" / "bench_prevalence.py"
    spec = importlib.util.spec_from_file_location("bench_prevalence", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick", "--no-readme"]) == 0
    out = capsys.readouterr().out
    table = _table(out, ["what", "seconds", "ratio", "target", "met?"])
    assert [row[0].split(" (")[0] for row in table] == ["one scoring pass", "`bayescramp.prevalence`",
                                                         "samplics `TaylorEstimator`"]
    assert "Largest difference between bayescramp and samplics" in out


@pytest.fixture(scope="module")
def bench_learning():
    path = ROOT / "benchmarks" / "bench_learning.py"
    spec = importlib.util.spec_from_file_location("bench_learning", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_learning"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("bench_learning", None)


def test_bench_learning_quick(bench_learning, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        has_pyagrum = importlib.util.find_spec("pyagrum") is not None
    assert bench_learning.main(["--quick"] + ([] if has_pyagrum else ["--no-pyagrum"])) == 0
    out = capsys.readouterr().out
    table = _table(out, bench_learning.HEADER)
    tools = {row[1] for row in table}
    assert {"bayescramp Model.fit", "bayescramp score_file (one scoring pass)"} <= tools
    assert not has_pyagrum or "pyAgrum BNLearner EM (extrapolated)" in tools
    assert any(row[-1].endswith("scoring passes") for row in table)

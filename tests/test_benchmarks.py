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


def test_bench_engine_quick_against_pgmpy(bench_engine, capsys):
    assert bench_engine.main([*TINY, "--tools", "pgmpy"]) == 0
    out = capsys.readouterr().out
    assert "| " + " | ".join(bench_engine.HEADER[:3]) in out.replace("  ", " ").replace("  ", " ")
    for case in ("default cohort", "complete rows", "distinct soft evidence", "alarm"):
        assert f"| {case}" in out
    assert "pgmpy predict_probability" in out and "pyAgrum" not in out.split("\n\n")[-2]


def test_bench_engine_quick_against_pyagrum(bench_engine, capsys):
    # pyAgrum's SWIG extension warns while it initialises; as an error it crashes the interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pytest.importorskip("pyagrum")
    assert bench_engine.main([*TINY, "--tools", "pyagrum"]) == 0
    out = capsys.readouterr().out
    assert out.count("pyAgrum LazyPropagation") == 3
    assert "rows/s" in out and "max |diff|" in out

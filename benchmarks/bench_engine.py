"""Engine benchmark (issue 3): bayescramp against pgmpy and pyAgrum, in one process, on the same rows.

Cases
-----
default cohort
    ``Model.simulate(rows, missing=0.2)`` on the default model; bayescramp ``Model.score``
    (end to end: encoding, deduplication of evidence patterns, propagation, output frame)
    against pgmpy ``VariableElimination.query`` per row and pyAgrum ``LazyPropagation``
    reused across rows. Blank cells are left out of the other tools' evidence.
complete rows
    The same model with no blanks, against pgmpy ``predict_probability`` (which raises
    ``KeyError`` on a blank cell, so it is timed on complete rows only).
distinct soft evidence
    A random likelihood vector on every evidence node of every row (leg_cramps included),
    so no two rows share a pattern and deduplication cannot help: the raw engine
    ``bayescramp.engine.propagate`` against pyAgrum soft evidence and pgmpy virtual evidence.
alarm
    The 37-node ALARM network (``tests/data/alarm.bif.gz``) simulated, with each cell kept
    as hard evidence with probability 0.25; every node is a bayescramp target, the other
    tools are asked for every node not observed in the row.

The slow tools are timed on the first ``--baseline-rows`` rows of each case (the same rows
bayescramp scores) and their rows/s extrapolated; bayescramp is timed on all ``--rows``
rows (median of three runs). ``ratio`` is bayescramp rows/s divided by the tool's rows/s,
both measured in this run. ``max abs diff`` is the largest absolute difference between the
tool's posterior probabilities and bayescramp's on the timed rows.

Run from the repository root after ``pip install -e ".[bench]"``::

    python benchmarks/bench_engine.py                 # 100,000 rows; about 5 minutes
    python benchmarks/bench_engine.py --quick         # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

import bayescramp
from bayescramp.engine import propagate
from bayescramp.evidence import BatchEvidence
from bayescramp.scoring import target_columns

ROOT = Path(__file__).resolve().parent.parent
ALARM = ROOT / "tests" / "data" / "alarm.bif.gz"
BASELINES = ("pgmpy", "pyagrum")

TARGET_RATIOS = {
    ("default cohort", "pgmpy VE per row"): 2000.0,
    ("default cohort", "pyAgrum LazyPropagation"): 1000.0,
    ("distinct soft evidence", "pyAgrum LazyPropagation"): 200.0,
    ("alarm", "pyAgrum LazyPropagation"): 100.0,
}


@dataclass
class Timing:
    """One line of the result table."""

    case: str
    tool: str
    n_rows: int
    seconds: float
    max_diff: float | None = None
    ratio: float | None = None

    @property
    def rows_per_second(self) -> float:
        """Rows per second (``inf`` when the clock did not move)."""
        return self.n_rows / self.seconds if self.seconds > 0 else float("inf")


def _median_seconds(run: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median wall time of ``repeats`` calls of ``run`` and the last result."""
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def _seconds(run: Callable[[], object]) -> tuple[float, object]:
    return _median_seconds(run, 1)


def _import_pyagrum():
    """pyAgrum, or None when it is not installed.

    Its SWIG extension emits DeprecationWarnings while it initialises; turned into errors
    (``-W error``, pytest ``filterwarnings = error``) they crash the interpreter, so they
    are silenced for the import only.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import pyagrum
        except ImportError:
            return None
    return pyagrum


def _pgmpy_inference():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from pgmpy.factors.discrete import TabularCPD
        from pgmpy.inference import VariableElimination
    return VariableElimination, TabularCPD


def _evidence_rows(frame: pd.DataFrame) -> list[dict[str, str]]:
    """Each row's non-blank cells as ``{node: state}``."""
    return [{node: value for node, value in row.items() if isinstance(value, str)}
            for row in frame.to_dict("records")]


def _max_diff(ours: np.ndarray, theirs: np.ndarray) -> float:
    """Largest absolute difference over the cells both give (NaN marks a cell not compared)."""
    both = ~(np.isnan(ours) | np.isnan(theirs))
    return float(np.abs(ours[both] - theirs[both]).max()) if both.any() else float("nan")


# ---------------------------------------------------------------------------------------------
# pyAgrum


class PyAgrumNetwork:
    """A pyAgrum network loaded from the model's exported BIF, with exact CPTs.

    pyAgrum's BIF reader parses probabilities as 32-bit floats (up to 3e-8 away from the
    file's values), so each CPT is refilled from the model's own tables after loading; the
    file still gives the structure, and pyAgrum's state order is read from its labels.
    Queries reuse one ``LazyPropagation``; when the targets are the same on every row they
    are declared with ``setTargets`` (pyAgrum's fastest setting, measured).
    """

    def __init__(self, pyagrum, model: bayescramp.Model, folder: Path):
        path = model.export(folder / "network.bif")
        self.bn = pyagrum.loadBN(str(path))
        self.model = model
        # permutation from pyAgrum's label order to ours, per node
        self.order = {}
        for node in model.nodes:
            labels = tuple(self.bn.variable(node).labels())
            ours = model.states(node)
            if sorted(labels) != sorted(ours):
                raise RuntimeError(f"pyAgrum node {node!r}: states {labels}; expected {ours}.")
            self.order[node] = np.array([ours.index(label) for label in labels])
        self.parsed_cpt_error = self._refill_cpts()
        self.pyagrum = pyagrum

    def _refill_cpts(self) -> float:
        """Put the model's exact tables into pyAgrum's CPTs; return the largest change."""
        largest = 0.0
        network = self.model.network
        for node in self.model.nodes:
            cpt = self.bn.cpt(node)
            variables = [*network.parents[node], node]
            table = network.tables[node]
            for axis, variable in enumerate(variables):
                table = np.take(table, self.order[variable], axis=axis)
            # cpt.toarray() has one axis per variable in reversed cpt.names order
            axes_order = list(reversed(list(cpt.names)))
            exact = np.transpose(table, [variables.index(v) for v in axes_order])
            largest = max(largest, float(np.abs(cpt.toarray() - exact).max()))
            cpt.fillWith(exact.ravel().tolist())
        return largest

    def _inference(self, targets: Sequence[str] | None):
        """Make a LazyPropagation; with ``targets``, restricted to them (pyAgrum then skips other work)."""
        inference = self.pyagrum.LazyPropagation(self.bn)
        if targets is not None:
            inference.setTargets(set(targets))
        return inference

    def hard(self, rows: Sequence[dict[str, str]], targets: Sequence[str] | None) -> list[dict]:
        """Posteriors per row from one reused engine, hard evidence erased between rows.

        ``targets=None`` asks, in each row, for every node not observed in it.
        """
        inference = self._inference(targets)
        results = []
        for evidence in rows:
            inference.eraseAllEvidence()
            if evidence:
                inference.setEvidence(evidence)
            inference.makeInference()
            wanted = targets if targets is not None else [n for n in self.model.nodes if n not in evidence]
            results.append({t: inference.posterior(t).toarray() for t in wanted})
        return results

    def soft(self, rows: Sequence[dict[str, list[float]]], targets: Sequence[str]) -> list[dict]:
        """Posteriors per row, likelihood evidence (vectors already in pyAgrum's label order)."""
        inference = self._inference(targets)
        results = []
        for evidence in rows:
            inference.eraseAllEvidence()
            for node, vector in evidence.items():
                inference.addEvidence(node, vector)
            inference.makeInference()
            results.append({t: inference.posterior(t).toarray() for t in targets})
        return results

    def in_our_order(self, node: str, values: np.ndarray) -> np.ndarray:
        """Reorder a posterior from pyAgrum's label order to the model's state order."""
        ours = np.empty_like(values)
        ours[self.order[node]] = values
        return ours

    def in_their_order(self, node: str, values: np.ndarray) -> list[float]:
        """Reorder a vector from the model's state order to pyAgrum's label order."""
        return [float(v) for v in np.asarray(values)[self.order[node]]]


# ---------------------------------------------------------------------------------------------
# comparisons: every tool's answers laid out like bayescramp's columns (NaN where not asked)


def _as_columns(model: bayescramp.Model, targets: Sequence[str],
                answers: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    """Lay answers out as ``[n_rows, n_columns]`` like :func:`target_columns`; NaN where not answered."""
    columns = target_columns(model.network, targets)
    table = np.full((len(answers), len(columns)), np.nan)
    for i, answer in enumerate(answers):
        for j, (_, node, k) in enumerate(columns):
            if node in answer:
                table[i, j] = answer[node][k]
    return table


def _score_columns(model: bayescramp.Model, targets: Sequence[str], scored: pd.DataFrame) -> np.ndarray:
    return scored[[name for name, _, _ in target_columns(model.network, targets)]].to_numpy(dtype=float)


def _pgmpy_values(model: bayescramp.Model, factor, node: str) -> np.ndarray:
    return np.array([factor.get_value(**{node: state}) for state in model.states(node)])


# ---------------------------------------------------------------------------------------------
# cases


def bench_default(model: bayescramp.Model, args, tools: set[str], folder: Path, pyagrum) -> list[Timing]:
    """Default cohort with 20% blanks: score vs pgmpy VE per row vs pyAgrum reused."""
    case = "default cohort"
    targets = model.default_targets
    cohort = model.simulate(args.rows, rng=args.seed, missing=0.2)
    seconds, scored = _median_seconds(lambda: model.score(cohort), 3)
    n_distinct = len(cohort.drop_duplicates())
    print(f"  {case}: {args.rows:,} rows, {n_distinct:,} distinct evidence patterns "
          f"({n_distinct / max(args.rows, 1):.1%})")
    timings = [Timing(case, "bayescramp Model.score", args.rows, seconds)]
    sample = cohort.iloc[:args.baseline_rows]
    ours = _score_columns(model, targets, scored.iloc[:args.baseline_rows])
    rows = _evidence_rows(sample)
    if "pgmpy" in tools:
        VariableElimination, _ = _pgmpy_inference()
        inference = VariableElimination(model.to_pgmpy())
        seconds, factors = _seconds(lambda: [inference.query(targets, evidence=e or None, joint=False,
                                                             show_progress=False) for e in rows])
        answers = [{t: _pgmpy_values(model, f[t], t) for t in targets} for f in factors]
        timings.append(Timing(case, "pgmpy VE per row", len(rows), seconds,
                              _max_diff(ours, _as_columns(model, targets, answers))))
    if "pyagrum" in tools and pyagrum is not None:
        network = PyAgrumNetwork(pyagrum, model, folder)
        print(f"  pyAgrum's BIF reader moved CPT entries by up to {network.parsed_cpt_error:.1e} "
              "(32-bit parsing); CPTs refilled from the model's tables")
        seconds, posteriors = _seconds(lambda: network.hard(rows, targets))
        answers = [{t: network.in_our_order(t, p[t]) for t in targets} for p in posteriors]
        timings.append(Timing(case, "pyAgrum LazyPropagation", len(rows), seconds,
                              _max_diff(ours, _as_columns(model, targets, answers))))
    return timings


def bench_complete(model: bayescramp.Model, args, tools: set[str]) -> list[Timing]:
    """Complete rows (no blanks): score vs pgmpy predict_probability."""
    case = "complete rows"
    if "pgmpy" not in tools:
        return []
    targets = model.default_targets
    cohort = model.simulate(args.rows, rng=args.seed + 1, missing=0.0)
    seconds, scored = _median_seconds(lambda: model.score(cohort), 3)
    timings = [Timing(case, "bayescramp Model.score", args.rows, seconds)]
    network = model.to_pgmpy()
    blank = model.simulate(3, rng=args.seed, missing=0.5)
    try:
        network.predict_probability(blank)
        print("  pgmpy predict_probability accepted blank cells")
    except KeyError as error:
        print(f"  pgmpy predict_probability on a row with a blank cell raises KeyError: {error}")
    sample = cohort.iloc[:args.baseline_rows]
    seconds, predicted = _seconds(lambda: network.predict_probability(sample))
    answers = [{t: np.array([predicted[f"{t}_{s}"].iloc[i] for s in model.states(t)]) for t in targets}
               for i in range(len(sample))]
    ours = _score_columns(model, targets, scored.iloc[:args.baseline_rows])
    timings.append(Timing(case, "pgmpy predict_probability", len(sample), seconds,
                          _max_diff(ours, _as_columns(model, targets, answers))))
    return timings


def bench_soft(model: bayescramp.Model, args, tools: set[str], folder: Path, pyagrum) -> list[Timing]:
    """Every row distinct: random likelihood vectors on every evidence node; raw engine."""
    case = "distinct soft evidence"
    targets = model.default_targets
    rng = np.random.default_rng(args.seed + 2)
    likelihood = {node: rng.uniform(0.05, 1.0, size=(args.rows, len(model.states(node))))
                  for node in model.evidence_nodes}
    evidence = BatchEvidence.from_likelihoods(likelihood)
    seconds, result = _median_seconds(lambda: propagate(model.network, evidence, targets=targets), 3)
    timings = [Timing(case, "bayescramp engine.propagate", args.rows, seconds)]
    n_sample = min(args.baseline_rows, args.rows)
    ours = _as_columns(model, targets, [{t: result.marginals[t][i] for t in targets} for i in range(n_sample)])
    if "pgmpy" in tools:
        VariableElimination, TabularCPD = _pgmpy_inference()
        network = model.to_pgmpy()
        inference = VariableElimination(network)
        # virtual-evidence factors are built before the clock starts (favours pgmpy)
        virtual = [[TabularCPD(node, len(model.states(node)), likelihood[node][i].reshape(-1, 1),
                               state_names={node: list(model.states(node))}) for node in likelihood]
                   for i in range(n_sample)]
        seconds, factors = _seconds(lambda: [inference.query(targets, virtual_evidence=v, joint=False,
                                                             show_progress=False) for v in virtual])
        answers = [{t: _pgmpy_values(model, f[t], t) for t in targets} for f in factors]
        timings.append(Timing(case, "pgmpy VE per row", n_sample, seconds,
                              _max_diff(ours, _as_columns(model, targets, answers))))
    if "pyagrum" in tools and pyagrum is not None:
        network = PyAgrumNetwork(pyagrum, model, folder)
        rows = [{node: network.in_their_order(node, likelihood[node][i]) for node in likelihood}
                for i in range(n_sample)]
        seconds, posteriors = _seconds(lambda: network.soft(rows, targets))
        answers = [{t: network.in_our_order(t, p[t]) for t in targets} for p in posteriors]
        timings.append(Timing(case, "pyAgrum LazyPropagation", n_sample, seconds,
                              _max_diff(ours, _as_columns(model, targets, answers))))
    return timings


def bench_alarm(args, tools: set[str], folder: Path, pyagrum) -> list[Timing]:
    """ALARM with hard evidence on ~25% of the cells: score vs pyAgrum and pgmpy VE."""
    case = "alarm"
    model = bayescramp.load_model(ALARM)
    targets = model.default_targets
    rng = np.random.default_rng(args.seed + 3)
    truth = model.simulate(args.rows, rng=rng, truth=True)[model.nodes]
    cohort = truth.mask(rng.random(truth.shape) >= 0.25)
    seconds, scored = _median_seconds(lambda: model.score(cohort, targets=targets), 3)
    timings = [Timing(case, "bayescramp Model.score", args.rows, seconds)]
    sample = cohort.iloc[:args.baseline_rows]
    ours = _score_columns(model, targets, scored.iloc[:args.baseline_rows])
    rows = _evidence_rows(sample)

    def unobserved(evidence: dict) -> list[str]:
        return [t for t in targets if t not in evidence]

    if "pyagrum" in tools and pyagrum is not None:
        network = PyAgrumNetwork(pyagrum, model, folder)
        seconds, posteriors = _seconds(lambda: network.hard(rows, None))
        answers = [{t: network.in_our_order(t, v) for t, v in p.items()} for p in posteriors]
        timings.append(Timing(case, "pyAgrum LazyPropagation", len(rows), seconds,
                              _max_diff(ours, _as_columns(model, targets, answers))))
    if "pgmpy" in tools:
        VariableElimination, _ = _pgmpy_inference()
        inference = VariableElimination(model.to_pgmpy())
        # one query per target: joint=False can pick an elimination order whose intermediate
        # factor does not fit in memory on alarm; pgmpy is slow here, so fewer rows are timed
        few = rows[:max(1, args.baseline_rows // 10)]
        seconds, factors = _seconds(lambda: [{t: inference.query([t], evidence=e or None, show_progress=False)
                                              for t in unobserved(e)} for e in few])
        answers = [{t: _pgmpy_values(model, f, t) for t, f in row.items()} for row in factors]
        timings.append(Timing(case, "pgmpy VE per target", len(few), seconds,
                              _max_diff(ours[:len(few)], _as_columns(model, targets, answers))))
    return timings


# ---------------------------------------------------------------------------------------------
# report


def add_ratios(timings: list[Timing]) -> None:
    """Fill each tool's ratio: the same case's bayescramp rows/s divided by the tool's."""
    reference = {t.case: t for t in timings if t.tool.startswith("bayescramp")}
    for timing in timings:
        if not timing.tool.startswith("bayescramp") and timing.case in reference:
            timing.ratio = reference[timing.case].rows_per_second / timing.rows_per_second


HEADER = ("case", "tool", "rows timed", "seconds", "rows/s", "ratio", "max abs diff", "target", "met?")


def format_table(timings: Sequence[Timing]) -> str:
    """Render the timings as a Markdown table (also readable as plain text)."""
    lines = []
    for t in timings:
        target = TARGET_RATIOS.get((t.case, t.tool))
        met = "" if target is None or t.ratio is None else ("yes" if t.ratio >= target else "NO")
        lines.append((t.case, t.tool, f"{t.n_rows:,}", f"{t.seconds:.3f}", f"{t.rows_per_second:,.0f}",
                      "-" if t.ratio is None else f"{t.ratio:,.0f}x",
                      "-" if t.max_diff is None else f"{t.max_diff:.1e}",
                      "-" if target is None else f">= {target:,.0f}x", met or "-"))
    widths = [max(len(str(row[k])) for row in [HEADER, *lines]) for k in range(len(HEADER))]

    def render(row: Sequence[str]) -> str:
        return "| " + " | ".join(str(cell).ljust(w) for cell, w in zip(row, widths)) + " |"

    return "\n".join([render(HEADER), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(render, lines)])


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="bench_engine.py",
        description="Time bayescramp against pgmpy (VE per row, predict_probability) and pyAgrum "
                    "(LazyPropagation reused) on the same rows, in one process; print rows/s, ratios "
                    "and the largest posterior difference.")
    parser.add_argument("--rows", type=int, default=None,
                        help="rows bayescramp scores per case (default 100,000; --quick: 500)")
    parser.add_argument("--baseline-rows", type=int, default=None,
                        help="first rows of each case timed with pgmpy and pyAgrum, whose rows/s is "
                             "extrapolated (default 2,000; --quick: 20); pgmpy on alarm gets a tenth")
    parser.add_argument("--seed", type=int, default=20260415, help="seed of every random draw")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in seconds")
    parser.add_argument("--tools", nargs="+", choices=BASELINES, default=list(BASELINES),
                        help="baselines to time (default: both)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; returns the exit status."""
    args = build_parser().parse_args(argv)
    args.rows = args.rows if args.rows is not None else (500 if args.quick else 100_000)
    args.baseline_rows = args.baseline_rows if args.baseline_rows is not None else (20 if args.quick else 2_000)
    if args.rows < 1 or args.baseline_rows < 1:
        print("bench_engine.py: error: --rows and --baseline-rows got a value below 1; expected at least 1.",
              file=sys.stderr)
        return 2
    args.baseline_rows = min(args.baseline_rows, args.rows)
    tools = set(args.tools)
    pyagrum = _import_pyagrum() if "pyagrum" in tools else None
    if "pyagrum" in tools and pyagrum is None:
        print("pyAgrum is not installed (pip install -e \".[bench]\"); its lines are skipped.")
    model = bayescramp.load_model()
    print(f"bayescramp {bayescramp.__version__}, numpy {np.__version__}, pandas {pd.__version__}"
          + (f", pyAgrum {pyagrum.__version__}" if pyagrum is not None else ""))
    print(f"bayescramp: {args.rows:,} rows per case, median of 3 runs. pgmpy and pyAgrum: the first "
          f"{args.baseline_rows:,} rows of the same cases (pgmpy on alarm: {max(1, args.baseline_rows // 10):,}), "
          "one run, rows/s extrapolated.")
    with tempfile.TemporaryDirectory() as folder:
        timings = [*bench_default(model, args, tools, Path(folder), pyagrum),
                   *bench_complete(model, args, tools),
                   *bench_soft(model, args, tools, Path(folder), pyagrum),
                   *bench_alarm(args, tools, Path(folder), pyagrum)]
    add_ratios(timings)
    print()
    print(format_table(timings))
    print("\nratio = bayescramp rows/s / tool rows/s, same case, same run; max abs diff over the tool's timed rows.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

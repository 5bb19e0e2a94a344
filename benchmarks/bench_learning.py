"""Learning benchmark (issue 13): EM against pyAgrum's BNLearner, a complete-data fit against scoring.

Cases
-----
EM, hidden deficiencies
    The default model simulates ``--rows`` people (20% of survey cells blank); the deficiency
    and anaemia columns are dropped (hidden). To give both tools the same objective the model
    is turned into full CPTs (``Model.from_pgmpy(model.to_pgmpy())``: pyAgrum has no noisy-OR
    parametrisation) and fitted by **maximum likelihood** (``prior_strength=0``; pyAgrum
    ``useNoPrior``) from the **same starting CPTs** (pyAgrum ``learnParameters(bn)``, noise 0),
    both stopping when the log-likelihood's relative increase falls below ``--tol`` (pyAgrum's
    rate criterion, ``useEMWithRateCriterion``; ``--tol``, default 1e-6). bayescramp fits all ``--rows`` rows.

    pyAgrum propagates row by row (about 20 ms per row per iteration here), so it runs on the
    first ``--baseline-rows`` rows: (1) to convergence beside bayescramp on the same rows (both at
    ``--baseline-tol``, default 1e-4, as thousands of pyAgrum iterations would take hours), their
    final log-likelihoods compared (pyAgrum's CPTs are evaluated by the bayescramp engine, as its
    own EM history reports the expected complete-data log-likelihood, not log P(data)); (2) its
    seconds per iteration, measured at two sizes and extrapolated linearly to ``--rows``.
    ``ratio`` = pyAgrum's extrapolated seconds per iteration × bayescramp's iteration count at
    ``--rows`` ÷ bayescramp's total seconds at ``--rows``. bayescramp's EM leaves out of each
    node's expected counts the rows that cannot inform it (the node and its descendants all
    blank): the same fixed points, usually in fewer iterations than textbook EM. With those rows
    put back, bayescramp run for as many iterations as pyAgrum ran gives pyAgrum's CPTs and
    log-likelihood (the script prints both differences): the two implement the same EM.
    For reference, the default model itself (noisy-ORs, range priors, 3 restarts) on the same rows.
complete data
    ``--big-rows`` people with every node observed, written as CSV: ``score_file`` once (one
    scoring pass: read, encode, propagate, write) against ``Model.fit(csv)`` (read and encode
    streamed, distinct patterns counted, closed-form update, report). Target: the fit takes at
    most 2 scoring passes.
recovery (``--recovery``)
    A "true" population (every number of the default moved to a random point of its range),
    200,000 people, 20% blanks, deficiencies hidden; the share of fitted parameters whose truth
    lies inside the fitted 95% interval.

Run from the repository root after ``pip install -e ".[bench]"``::

    python benchmarks/bench_learning.py                # about 15 minutes
    python benchmarks/bench_learning.py --recovery     # and the 200,000-row recovery check
    python benchmarks/bench_learning.py --quick        # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Sequence

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bayescramp  # noqa: E402
from bayescramp.engine import propagate  # noqa: E402
from bayescramp.evidence import BatchEvidence  # noqa: E402
from bayescramp.learning import FitWarning, count_patterns  # noqa: E402
from bayescramp.survey import score_file  # noqa: E402

HEADER = ("case", "tool", "rows", "iterations", "seconds", "s / iteration", "log-likelihood", "ratio")


def _quiet(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        return call()


def _timed(call):
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def _import_pyagrum():
    from bench_engine import _import_pyagrum as load

    return load()


def _survey(model: bayescramp.Model, n_rows: int, seed: int) -> pd.DataFrame:
    cohort = model.simulate(n_rows, rng=seed, missing=0.2)
    return cohort


def _log_likelihood(model: bayescramp.Model, data: pd.DataFrame, tables: dict) -> float:
    """Log P(data) under ``tables`` (node -> CPT in the model's layout), by the bayescramp engine."""
    counts = count_patterns(model.network, data)
    likelihood = {node: counts.alphabets[j][counts.patterns[:, j]] for j, node in enumerate(counts.nodes)}
    result = propagate(model.network, BatchEvidence.from_likelihoods(likelihood, n_rows=counts.n_patterns), targets=[],
                       tables={k: v[None] for k, v in tables.items()})
    return float(counts.counts @ result.log_evidence_probability)


class PyAgrumEM:
    """pyAgrum's BNLearner EM on a model's structure and starting CPTs (exact tables, label order mapped)."""

    def __init__(self, pyagrum, model: bayescramp.Model, folder: Path):
        from bench_engine import PyAgrumNetwork

        self.pyagrum = pyagrum
        self.model = model
        self.network = PyAgrumNetwork(pyagrum, model, folder)
        self.folder = folder

    def fit(self, data: pd.DataFrame, *, tol: float, max_iter: int | None = None) -> tuple[float, int, dict]:
        """(seconds, iterations, learned CPTs in the model's layout) of one EM run on ``data``."""
        frame = data.copy()
        for node in self.model.nodes:
            if node not in frame:
                frame[node] = None
        path = self.folder / f"pyagrum_{len(frame)}.csv"
        frame[self.model.nodes].fillna("?").to_csv(path, index=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            learner = self.pyagrum.BNLearner(str(path), self.network.bn, ["?"])
            # a vanishing smoothing prior: pyAgrum refuses a parent configuration the rows never hold
            # (v2's magnesium node has 60); 1e-9 pseudo-counts change nothing else measurably
            learner.useSmoothingPrior(1e-9)
            learner.useEMWithRateCriterion(tol, 0.0)
            if max_iter is not None:
                learner.EMsetMaxIter(max_iter)
            start = time.perf_counter()
            learned = learner.learnParameters(self.network.bn)
            seconds = time.perf_counter() - start
            return seconds, int(learner.EMnbrIterations()), self._tables(learned)

    def _tables(self, bn) -> dict:
        tables = {}
        for node in self.model.nodes:
            cpt = bn.cpt(node)
            variables = [*self.model.network.parents[node], node]
            axes = list(reversed(list(cpt.names)))
            table = np.transpose(cpt.toarray(), [axes.index(v) for v in variables])
            for axis, variable in enumerate(variables):
                labels = list(bn.variable(variable).labels())
                table = np.take(table, [labels.index(s) for s in self.model.states(variable)], axis=axis)
            tables[node] = table
        return tables


def _informed_difference(prior: np.ndarray, ours: np.ndarray, theirs: np.ndarray) -> float:
    """Largest |ours - theirs| over the CPT rows the data informs.

    bayescramp keeps an uninformed row at its prior; pyAgrum's smoothing makes it uniform.
    """
    informed = ~np.all(ours == prior, axis=-1)
    difference = np.abs(ours - theirs)[informed]
    return float(difference.max()) if difference.size else 0.0


def bench_em(args, folder: Path, pyagrum) -> list[dict]:
    """EM with blanks and hidden deficiencies: bayescramp on all rows, pyAgrum on a subset."""
    model = bayescramp.load_model()
    full = bayescramp.Model.from_pgmpy(model.to_pgmpy())
    cohort = _survey(model, args.rows, args.seed)
    hidden = [n for n in model.nodes if n not in model.evidence_nodes]
    print(f"EM data: {len(cohort):,} rows, 20% of survey cells blank, hidden: {', '.join(hidden)}; "
          f"{count_patterns(model.network, cohort).n_patterns:,} distinct evidence patterns")
    lines = []
    seconds, result = _timed(lambda: _quiet(lambda: full.fit(cohort, prior_strength=0, tol=args.tol,
                                                                max_iter=args.max_iter, n_restarts=1)))
    ours = {"case": "EM, full CPTs, maximum likelihood", "tool": "bayescramp Model.fit", "rows": len(cohort),
            "iterations": result.provenance["iterations"], "seconds": seconds,
            "per_iteration": seconds / max(1, result.provenance["iterations"]),
            "log_likelihood": result.provenance["log_likelihood"]}
    lines.append(ours)
    seconds_default, result_default = _timed(lambda: _quiet(lambda: model.fit(
        cohort, tol=args.tol, max_iter=args.max_iter, n_restarts=3, rng=1)))
    e_steps = len(result_default.log_likelihood_trace)
    lines.append({"case": "EM, default model (noisy-OR, range priors, 3 restarts)", "tool": "bayescramp Model.fit",
                  "rows": len(cohort), "iterations": e_steps - 3, "seconds": seconds_default,
                  "per_iteration": seconds_default / e_steps,
                  "log_likelihood": result_default.provenance["log_likelihood"]})
    if pyagrum is None:
        return lines
    em = PyAgrumEM(pyagrum, full, folder)
    subset = cohort.head(args.baseline_rows)
    ours_small_seconds, ours_small = _timed(lambda: _quiet(lambda: full.fit(
        subset, prior_strength=0, tol=args.baseline_tol, max_iter=args.max_iter, n_restarts=1)))
    theirs_seconds, theirs_iterations, theirs_tables = em.fit(subset, tol=args.baseline_tol, max_iter=args.max_iter)
    theirs_log_likelihood = _log_likelihood(full, subset, theirs_tables)
    lines.append({"case": f"EM, full CPTs, first {len(subset):,} rows", "tool": "bayescramp Model.fit",
                  "rows": len(subset), "iterations": ours_small.provenance["iterations"], "seconds": ours_small_seconds,
                  "per_iteration": ours_small_seconds / max(1, ours_small.provenance["iterations"]),
                  "log_likelihood": ours_small.provenance["log_likelihood"]})
    lines.append({"case": f"EM, full CPTs, first {len(subset):,} rows", "tool": "pyAgrum BNLearner EM",
                  "rows": len(subset), "iterations": theirs_iterations, "seconds": theirs_seconds,
                  "per_iteration": theirs_seconds / max(1, theirs_iterations),
                  "log_likelihood": theirs_log_likelihood})
    # pyAgrum's cost per iteration at two sizes: linear in rows?
    half = cohort.head(max(1, args.baseline_rows // 2))
    probe = max(1, min(3, args.max_iter))
    half_seconds, half_iterations, _ = em.fit(half, tol=1e-15, max_iter=probe)
    full_seconds, full_iterations, _ = em.fit(subset, tol=1e-15, max_iter=probe)
    per_row_iteration = full_seconds / max(1, full_iterations) / len(subset)
    print(f"pyAgrum seconds per iteration: {half_seconds / max(1, half_iterations):.3f} at {len(half):,} rows, "
          f"{full_seconds / max(1, full_iterations):.3f} at {len(subset):,} rows ({per_row_iteration * 1e3:.2f} ms per "
          "row per iteration)")
    extrapolated = per_row_iteration * len(cohort)
    lines.append({"case": "EM, full CPTs, maximum likelihood", "tool": "pyAgrum BNLearner EM (extrapolated)",
                  "rows": len(cohort), "iterations": ours["iterations"],
                  "seconds": extrapolated * max(1, ours["iterations"]), "per_iteration": extrapolated,
                  "log_likelihood": math.nan, "ratio": extrapolated * max(1, ours["iterations"]) / ours["seconds"]})
    standard = _standard_em(full, subset, theirs_iterations)
    largest = max(_informed_difference(full.network.tables[n], standard.model.network.tables[n], theirs_tables[n])
                  for n in full.nodes)
    print(f"textbook EM in bayescramp (every row in every node's counts), {theirs_iterations} iterations as pyAgrum "
          f"ran: log-likelihood {standard.provenance['log_likelihood']:.9f} against pyAgrum's "
          f"{theirs_log_likelihood:.9f}; largest CPT difference {largest:.2g}")
    difference = ours_small.provenance["log_likelihood"] - theirs_log_likelihood
    print(f"both stopped at tol {args.baseline_tol:g} on the first {len(subset):,} rows: bayescramp after "
          f"{ours_small.provenance['iterations']} iterations, log-likelihood "
          f"{ours_small.provenance['log_likelihood']:.6f}; "
          f"pyAgrum after {theirs_iterations}, {theirs_log_likelihood:.6f} (bayescramp higher by {difference:.3g}; "
          "pyAgrum's rate criterion reads its EM history, the expected complete-data log-likelihood)")
    print(f"one pyAgrum iteration on {len(cohort):,} rows (extrapolated, {extrapolated:,.0f} s) takes "
          f"{extrapolated / ours['seconds']:,.0f}x bayescramp's whole fit ({ours['seconds']:.1f} s, "
          f"{ours['iterations']} iterations)")
    return lines


def _standard_em(model: bayescramp.Model, data: pd.DataFrame, iterations: int):
    """Textbook EM in bayescramp: every row in every node's expected counts, ``iterations`` steps."""
    import bayescramp.learning as learning

    original = learning._Problem.__init__

    def standard(problem, *arguments, **options):
        original(problem, *arguments, **options)
        # every row in every node's expected counts, as textbook EM (and pyAgrum) does
        problem.informed = {name: np.ones_like(mask) for name, mask in problem.informed.items()}

    learning._Problem.__init__ = standard
    try:
        return _quiet(lambda: model.fit(data, prior_strength=0, tol=0.0, max_iter=iterations, n_restarts=1))
    finally:
        learning._Problem.__init__ = original


def bench_complete(args, folder: Path) -> list[dict]:
    """A complete-data fit of ``--big-rows`` rows against scoring the same file once."""
    model = bayescramp.load_model()
    cohort = model.simulate(args.big_rows, rng=args.seed + 1, truth=True)
    path = folder / "complete.csv"
    cohort.to_csv(path, index=False)
    del cohort
    score_seconds, _ = _timed(lambda: score_file(path, folder / "scores.csv", model=model, progress=False))
    fit_seconds, result = _timed(lambda: _quiet(lambda: model.fit(path)))
    return [
        {"case": f"complete data, {args.big_rows:,} rows (CSV)", "tool": "bayescramp score_file (one scoring pass)",
         "rows": args.big_rows, "iterations": math.nan, "seconds": score_seconds, "per_iteration": math.nan,
         "log_likelihood": math.nan},
        {"case": f"complete data, {args.big_rows:,} rows (CSV)", "tool": "bayescramp Model.fit",
         "rows": args.big_rows, "iterations": result.provenance["iterations"], "seconds": fit_seconds,
         "per_iteration": math.nan, "log_likelihood": result.provenance["log_likelihood"],
         "ratio": fit_seconds / score_seconds, "ratio_name": "scoring passes"},
    ]


def bench_recovery(args) -> str:
    """Share of fitted parameters whose simulated truth lies inside its fitted 95% interval."""
    model = bayescramp.load_model()
    rng = np.random.default_rng(args.seed)
    values = {}
    for parameter in model.parameters().itertuples():
        if parameter.high > parameter.low:
            values[parameter.id] = float(rng.uniform(parameter.low, parameter.high))
    rows: dict = {}
    for parameter in model.parameters().itertuples():
        if parameter.kind == "table" and parameter.id in values:
            rows.setdefault((parameter.node, parameter.parents), []).append(parameter.id)
    for ids in rows.values():
        total = sum(values[i] for i in ids)
        if total > 0.95:
            for i in ids:
                values[i] *= 0.95 / total
    truth = model.with_parameters(values)
    cohort = truth.simulate(args.recovery_rows, rng=rng, missing=0.2)
    seconds, result = _timed(lambda: _quiet(lambda: model.fit(cohort, max_iter=args.max_iter, n_restarts=1, rng=1)))
    report = result.report.set_index("id")
    fitted = report[report["status"].isin(["fitted", "not_identifiable"])]
    true_values = truth.parameters().set_index("id")["value"][fitted.index]
    inside = (fitted["lower"] <= true_values) & (true_values <= fitted["upper"])
    identifiable = fitted["status"] == "fitted"
    return (f"recovery: {args.recovery_rows:,} rows, 20% blanks, deficiencies hidden, {seconds:.0f} s "
            f"({result.provenance['iterations']} iterations, converged: {result.provenance['converged']}): "
            f"truth inside the fitted 95% interval for {inside.mean():.0%} of {len(fitted)} fitted parameters "
            f"({inside[identifiable].mean():.0%} of the {int(identifiable.sum())} identifiable ones, "
            f"{inside[~identifiable].mean():.0%} of the {int((~identifiable).sum())} flagged not identifiable)")


def format_table(lines: list[dict]) -> str:
    """A markdown table of the result lines."""
    out = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * 2 + "---:|" * 6]

    def number(value, spec):
        return "" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)

    for line in lines:
        ratio = line.get("ratio")
        ratio_text = "" if ratio is None else f"{ratio:,.2f} {line['ratio_name']}" if "ratio_name" in line \
            else f"{ratio:,.0f}×"
        out.append("| " + " | ".join([line["case"], line["tool"], f"{line['rows']:,}",
                                      number(line["iterations"], ",.0f"), number(line["seconds"], ",.2f"),
                                      number(line["per_iteration"], ",.3f"), number(line["log_likelihood"], ",.3f"),
                                      ratio_text]) + " |")
    return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--rows", type=int, default=None, help="rows of the EM case (default 100,000)")
    parser.add_argument("--baseline-rows", type=int, default=None, help="rows pyAgrum runs on (default 300)")
    parser.add_argument("--big-rows", type=int, default=None, help="rows of the complete-data case (default 1,000,000)")
    parser.add_argument("--tol", type=float, default=1e-6, help="EM relative-change tolerance at --rows (default 1e-6)")
    parser.add_argument("--baseline-tol", type=float, default=1e-4,
                        help="EM tolerance of both tools on the --baseline-rows subset (default 1e-4: pyAgrum needs "
                             "seconds per iteration there)")
    parser.add_argument("--max-iter", type=int, default=None, help="EM iterations at most (default 500)")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--no-pyagrum", action="store_true", help="skip pyAgrum")
    parser.add_argument("--recovery", action="store_true", help="also run the 200,000-row recovery check")
    parser.add_argument("--recovery-rows", type=int, default=200_000)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; returns the exit status."""
    args = build_parser().parse_args(argv)
    args.rows = args.rows or (300 if args.quick else 100_000)
    args.baseline_rows = min(args.baseline_rows or (20 if args.quick else 300), args.rows)
    args.big_rows = args.big_rows or (2_000 if args.quick else 1_000_000)
    args.max_iter = args.max_iter or (5 if args.quick else 500)
    pyagrum = None if args.no_pyagrum else _import_pyagrum()
    print(f"bayescramp {bayescramp.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} CPU(s)" + (f", pyAgrum {pyagrum.__version__}" if pyagrum else "")
          + f"; load average {os.getloadavg()[0]:.2f} at the start")
    with tempfile.TemporaryDirectory() as folder:
        lines = [*bench_em(args, Path(folder), pyagrum), *bench_complete(args, Path(folder))]
    print()
    print(format_table(lines))
    if args.recovery:
        print()
        print(bench_recovery(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

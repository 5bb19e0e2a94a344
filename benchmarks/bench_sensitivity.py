"""Benchmark: closed-form sensitivity functions against brute force, and credible intervals.

1. A 10,000-row simulated cohort (10% blanks) is scored once (``Model.score``).
2. Every parameter's sensitivity function for P(potassium_deficiency = present | row) is
   computed for every row in closed form (``Model.sensitivity(cohort, summary="rows")``).
3. Brute force: for each parameter, ``with_parameters`` at the end of its range (its high
   end, or 0.5 for a point range) and the cohort re-scored; the closed form evaluated at
   the same value must agree to 1e-9 on every row.
4. Credible intervals (90%) for a 100,000-row cohort with 1,000 joint parameter draws.

Run from the repository root:  python benchmarks/bench_sensitivity.py [--quick] [--no-readme]
Results are printed and appended to benchmarks/README.md under "## Sensitivity (issue 5)".
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from pathlib import Path

# one BLAS thread: the small matrix products of both scoring and sensitivity lose to thread start-up
# and, on a shared 2-core machine, to oversubscription (set before numpy is imported)
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bayescramp  # noqa: E402
from bayescramp.scoring import as_evidence, target_columns  # noqa: E402
from bayescramp.sensitivity import sensitivity_functions  # noqa: E402

TARGET = ("potassium_deficiency", "present")
README = Path(__file__).resolve().parent / "README.md"
SECTION = "## Sensitivity (issue 5)"


def best_of(repeats: int, work):
    """The fastest of ``repeats`` runs of ``work()``, and its last result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return min(times), result


def main(argv=None) -> int:
    """Run the benchmark, print the figures and (unless --no-readme) append them to the README."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--no-readme", action="store_true", help="do not append to benchmarks/README.md")
    args = parser.parse_args(argv)
    n_rows = 1_000 if args.quick else 10_000
    n_interval_rows = 2_000 if args.quick else 100_000
    n_draws = 100 if args.quick else 1_000

    model = bayescramp.load_model()
    cohort = model.simulate(n_rows, rng=2026, missing=0.1)
    score_seconds, _ = best_of(3, lambda: model.score(cohort, targets=[TARGET[0]]))
    rows_seconds, table = best_of(3, lambda: model.sensitivity(cohort, targets=TARGET, summary="rows"))
    mean_seconds, _ = best_of(3, lambda: model.sensitivity(cohort, targets=TARGET))

    column = next(name for name, _, k in target_columns(model.network, [TARGET[0]])
                  if model.states(TARGET[0])[k] == TARGET[1])
    patterns, inverse = as_evidence(model.network, cohort).distinct()
    n_patterns = patterns.n_rows
    functions = sensitivity_functions(model.spec, model.network, patterns, targets=TARGET)
    start = time.perf_counter()
    worst = 0.0
    for j, effect in enumerate(functions.effects):
        theta = effect.high if effect.high != effect.value else (effect.low if effect.low != effect.value else 0.5)
        rescored = model.with_parameters({effect.id: theta}).score(cohort, targets=[TARGET[0]])
        brute = rescored[column].to_numpy()
        closed = functions.evaluate(np.full(len(functions.effects), theta))[inverse, j]
        both = ~np.isnan(brute) & ~np.isnan(closed)
        if not np.array_equal(np.isnan(brute), np.isnan(closed)):
            raise SystemExit(f"{effect.id}: impossible rows differ between closed form and brute force")
        worst = max(worst, float(np.abs(brute[both] - closed[both]).max(initial=0.0)))
    brute_seconds = time.perf_counter() - start
    if worst > 1e-9:
        raise SystemExit(f"closed form and brute force differ by {worst:.3g} > 1e-9")

    big = model.simulate(n_interval_rows, rng=7)
    start = time.perf_counter()
    scored = model.score(big, interval=0.9, n_draws=n_draws, rng=1)
    interval_seconds = time.perf_counter() - start
    n_big_patterns = len(big.drop_duplicates())
    width = (scored[f"{column}_upper"] - scored[f"{column}_lower"]).median()

    n_params = len(functions.effects)
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU(s) (note the machine load beside these figures), Python "
        f"{platform.python_version()}, numpy {np.__version__}, OPENBLAS_NUM_THREADS="
        f"{os.environ['OPENBLAS_NUM_THREADS']}; {time.strftime('%Y-%m-%d')}{' (--quick)' if args.quick else ''}.",
        "",
        f"Cohort: {n_rows:,} simulated rows, 10% blanks ({n_patterns:,} distinct evidence patterns); "
        f"target P(potassium_deficiency = present); {n_params} parameters.",
        "",
        "| what | seconds | ratio to scoring once |",
        "|---|---:|---:|",
        f"| score the cohort once (`Model.score`) | {score_seconds:.3f} | 1.0 |",
        f"| all sensitivity functions, every row (`summary=\"rows\"`, {len(table):,} rows out) | {rows_seconds:.3f} "
        f"| {rows_seconds / score_seconds:.1f} |",
        f"| all sensitivity functions, cohort mean (`summary=\"mean\"`) | {mean_seconds:.3f} "
        f"| {mean_seconds / score_seconds:.1f} |",
        f"| brute force: re-score once per parameter ({n_params} x `with_parameters` + `score`) | {brute_seconds:.3f} "
        f"| {brute_seconds / score_seconds:.1f} |",
        "",
        f"Closed form vs brute force: largest difference {worst:.2e} over {n_rows:,} rows x {n_params} parameters "
        f"(required <= 1e-9); closed form is {brute_seconds / rows_seconds:.1f}x faster than brute force.",
        "",
        f"Credible intervals (90%): {n_interval_rows:,} rows ({n_big_patterns:,} distinct patterns) x {n_draws:,} "
        f"joint draws of all {n_params} parameters: {interval_seconds:.1f} s "
        f"(median interval width of P(potassium deficiency) {width:.4f}).",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_readme:
        _append(report)
    return 0


def _append(report: str) -> None:
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    block = f"{SECTION}\n\nRun: `python benchmarks/bench_sensitivity.py`\n\n{report}\n"
    if SECTION in text:
        # replace this benchmark's own section only, up to the next "## " heading
        text = re.sub(rf"{re.escape(SECTION)}\n.*?(?=\n## |\Z)", lambda _: block.rstrip("\n"), text, flags=re.S)
        text = text.rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + block
    temporary = README.with_suffix(".md.partial")
    temporary.write_text(text)
    temporary.replace(README)


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: population prevalence with design-based SEs against one scoring pass and against samplics.

1. A simulated cohort (default 1,000,000 rows, 20% blanks) with an NHANES-like design: 15 strata
   of 2 PSUs, weights, and three grouping columns (``sex``, ``age_group`` drawn at random, and the
   cohort's ``diuretic``).
2. One scoring pass: ``Model.score`` of the cohort (the six deficiencies).
3. ``bayescramp.prevalence`` of the scored rows: 6 targets, overall + each grouping column alone
   + their three-way cross (1 + 2 + 3 + 5 + 30 = 41 subgroups per target), estimate, SE, CI, deff.
4. The same estimates and SEs with samplics (``TaylorEstimator(PopParam.mean)``, one call per
   target and grouping, the subgroups as its domains); the two must agree to 1e-9.

Targets (issue 12): prevalence <= 1 scoring pass, and >= 20x faster than samplics, in one run.

Run from the repository root:  python benchmarks/bench_prevalence.py [--rows N] [--quick] [--no-readme]
Results are printed and written to benchmarks/README.md under "## Population prevalence (issue 12)".
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
import warnings
from pathlib import Path

# one BLAS thread, as for the other benchmarks (set before numpy is imported)
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bayescramp  # noqa: E402

README = Path(__file__).resolve().parent / "README.md"
SECTION = "## Population prevalence (issue 12)"
BY = ["sex", "age_group", "diuretic"]
GROUPINGS = [(), ("sex",), ("age_group",), ("diuretic",), tuple(BY)]
N_STRATA, PSUS_PER_STRATUM = 15, 2
MISSING = "(missing)"


def best_of(repeats: int, work):
    """The fastest of ``repeats`` runs of ``work()``, and its last result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return min(times), result


def cohort_with_design(model, n_rows: int, seed: int) -> pd.DataFrame:
    """A simulated cohort with strata, PSUs, weights and two random grouping columns."""
    rng = np.random.default_rng(seed)
    cohort = model.simulate(n_rows, rng=rng, missing=0.2)
    unit = rng.integers(0, N_STRATA * PSUS_PER_STRATUM, n_rows)
    cohort["stratum"] = unit // PSUS_PER_STRATUM + 134
    cohort["psu"] = unit % PSUS_PER_STRATUM + 1
    cohort["sex"] = rng.choice(["female", "male"], n_rows)
    cohort["age_group"] = rng.choice(["18_39", "40_64", "65_plus"], n_rows, p=[0.4, 0.4, 0.2])
    cohort["weight"] = rng.lognormal(np.log(12_000), 0.5, n_rows)
    return cohort


def samplics_estimates(scored: pd.DataFrame, columns) -> dict:
    """{(target column, grouping, domain label): (estimate, se)} from samplics, one call per target and grouping."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from samplics.estimation import TaylorEstimator
        from samplics.utils.types import PopParam

        found = {}
        weight = scored["weight"].to_numpy()
        stratum, psu = scored["stratum"].to_numpy(), scored["psu"].to_numpy()
        labels = {grouping: (scored[list(grouping)].astype(object).fillna(MISSING).astype(str).agg("|".join, axis=1)
                             .to_numpy() if grouping else None) for grouping in GROUPINGS}
        for column in columns:
            y = scored[column].to_numpy()
            for grouping in GROUPINGS:
                estimator = TaylorEstimator(PopParam.mean)
                estimator.estimate(y, weight, stratum=stratum, psu=psu, domain=labels[grouping])
                if grouping:
                    for label in estimator.point_est:
                        found[column, grouping, str(label)] = (estimator.point_est[label], estimator.stderror[label])
                else:
                    found[column, grouping, "all"] = (estimator.point_est, estimator.stderror)
    return found


def largest_difference(table: pd.DataFrame, reference: dict) -> float:
    """Largest absolute difference in estimate or SE between bayescramp and samplics."""
    worst = 0.0
    for row in table.itertuples(index=False):
        values = row._asdict()
        grouping = () if row.group == "all" else tuple(row.group.split("*"))
        label = "|".join(MISSING if pd.isna(values[c]) else str(values[c]) for c in grouping) if grouping else "all"
        estimate, se = reference["p_" + row.target, grouping, label]
        worst = max(worst, abs(row.estimate - estimate), abs(row.se - se))
    return worst


def main(argv=None) -> int:
    """Run the benchmark, print the figures and (unless --no-readme) write them to the README."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="cohort rows (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2,000 rows, one repeat")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-readme", action="store_true", help="do not write to benchmarks/README.md")
    args = parser.parse_args(argv)
    n_rows = 2_000 if args.quick else args.rows
    repeats = 1 if args.quick else 3
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())

    model = bayescramp.load_model()
    cohort = cohort_with_design(model, n_rows, args.seed)
    score_seconds, scores = best_of(repeats, lambda: model.score(cohort))
    # the design columns pass through scoring; sex, age group and diuretic are evidence, so they are added back
    scored = scores.assign(**{column: cohort[column].to_numpy() for column in BY})
    columns = [c for c in scores.columns if c.startswith("p_")]
    by = [*BY, "*".join(BY)]
    prevalence_seconds, table = best_of(repeats, lambda: bayescramp.prevalence(
        scored, weights="weight", strata="stratum", psu="psu", by=by))
    start = time.perf_counter()
    reference = samplics_estimates(scored, columns)
    samplics_seconds = time.perf_counter() - start
    worst = largest_difference(table, reference)
    if worst > 1e-9:
        raise SystemExit(f"bayescramp and samplics differ by {worst:.3g} > 1e-9")

    n_groups = int((table["target"] == table["target"].iloc[0]).sum())
    to_scoring = prevalence_seconds / score_seconds
    speed_up = samplics_seconds / prevalence_seconds
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU(s), load average {load:.2f} at the start, Python "
        f"{platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, OPENBLAS_NUM_THREADS="
        f"{os.environ['OPENBLAS_NUM_THREADS']}; started {started}, load average at the end "
        f"{os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan'):.2f}{' (--quick)' if args.quick else ''}.",
        "",
        f"Cohort: {n_rows:,} simulated rows (20% blanks), {N_STRATA} strata x {PSUS_PER_STRATUM} PSUs, lognormal "
        f"weights; {len(columns)} targets; groupings: overall, {', '.join(BY)} and their cross ({n_groups} subgroups "
        f"per target, {len(table):,} estimates). bayescramp and scoring: best of {repeats}; samplics: one run.",
        "",
        "| what | seconds | ratio | target | met? |",
        "|---|---:|---:|---:|---|",
        f"| one scoring pass (`Model.score`, {len(columns)} targets) | {score_seconds:.3f} | 1.0 | | |",
        f"| `bayescramp.prevalence` (estimate, SE, CI, deff, n) | {prevalence_seconds:.3f} | {to_scoring:.2f} of a "
        f"scoring pass | <= 1 | {'**yes**' if to_scoring <= 1 else 'no'} |",
        f"| samplics `TaylorEstimator` (estimate, SE, CI), {len(columns) * len(GROUPINGS)} calls | "
        f"{samplics_seconds:.3f} | bayescramp {speed_up:,.0f}x faster | >= 20x | "
        f"{'**yes**' if speed_up >= 20 else 'no'} |",
        "",
        f"Largest difference between bayescramp and samplics over every estimate and SE: {worst:.1e} (required "
        "<= 1e-9).",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_readme:
        _write(report)
    return 0


def _write(report: str) -> None:
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    block = f"{SECTION}\n\nRun: `python benchmarks/bench_prevalence.py`\n\n{report}\n"
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

"""Benchmark of survey scoring (issue 4): score_file against the Arrow read+write floor.

Measures, on one simulated survey (default model, 20% blank cells, an id column):

1. ``bayescramp.score_file`` CSV -> CSV against the floor: a bare ``pyarrow.csv.read_csv``
   of the same file plus a ``pyarrow.csv.write_csv`` of an output table of the same shape
   (target <= 2.0x);
2. the same with Parquet in and out (floor: ``pyarrow.parquet`` read + write);
3. the ``bayescramp score`` command on the CSV (wall time, start-up included) and its peak
   memory (max RSS) for N and 5N rows (target: ratio <= 1.2 and under 1 GiB);
4. Dask (a LocalCluster on this machine) against the local path, Parquet out.

Run from the repository root::

    python benchmarks/bench_scoring.py                       # 1M and 5M rows
    python benchmarks/bench_scoring.py --rows 100000 --big-rows 300000 --no-readme

The figures are printed and written to ``benchmarks/README.md`` under
"## Survey scoring (issue 4)" (that section only is replaced). Not a timed test.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bayescramp  # noqa: E402
from bayescramp.distributed import score_dask_file  # noqa: E402

HEADING = "## Survey scoring (issue 4)"


def simulate_csv(path: Path, n_rows: int, *, seed: int, block: int = 1_000_000) -> None:
    """Write ``n_rows`` simulated rows (20% blanks) in blocks, so 5M rows need little memory."""
    model = bayescramp.load_model()
    rng = np.random.default_rng(seed)
    writer = None
    start = 0
    while start < n_rows:
        n = min(block, n_rows - start)
        frame = model.simulate(n, rng=rng, missing=0.2)
        frame.insert(0, "id", np.arange(start, start + n))
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.cast(pa.schema([pa.field("id", pa.int64())] + [pa.field(c, pa.string())
                                                                       for c in frame.columns[1:]]))
        if writer is None:
            writer = pa_csv.CSVWriter(str(path), table.schema)
        writer.write_table(table)
        start += n
    writer.close()


def output_like(n_rows: int, ids: pa.Array, n_probabilities: int) -> pa.Table:
    """A table shaped like score_file's output: id, p_ columns, P(e), log P(e), status."""
    rng = np.random.default_rng(0)
    columns = {"id": ids}
    for k in range(n_probabilities):
        columns[f"p_{k}"] = rng.random(n_rows)
    columns["evidence_probability"] = rng.random(n_rows)
    columns["log_evidence_probability"] = np.log(columns["evidence_probability"])
    columns["status"] = pa.array(["ok"] * n_rows)
    return pa.table(columns)


def timed(function, *args, **kwargs) -> tuple[float, object]:
    """Seconds one call takes, and its result."""
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def best_of(repeats: int, function, *args, **kwargs) -> tuple[float, object]:
    """The fastest of ``repeats`` calls, and the last result."""
    runs = [timed(function, *args, **kwargs) for _ in range(repeats)]
    return min(r[0] for r in runs), runs[-1][1]


def csv_floor(source: Path, target: Path, n_probabilities: int) -> None:
    """The floor: read the CSV with Arrow and write a same-shaped output."""
    table = pa_csv.read_csv(source)
    pa_csv.write_csv(output_like(table.num_rows, table["id"], n_probabilities), target)


def parquet_floor(source: Path, target: Path, n_probabilities: int) -> None:
    """The floor: read the Parquet file with Arrow and write a same-shaped output."""
    table = pq.read_table(source)
    pq.write_table(output_like(table.num_rows, table["id"], n_probabilities), target)


def cli_run(source: Path, target: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of ``bayescramp score`` in a fresh process."""
    probe = ("import resource, subprocess, sys, time\n"
             "t = time.perf_counter()\n"
             f"subprocess.run([sys.executable, '-m', 'bayescramp', 'score', r'{source}', '-o', r'{target}', "
             "'--quiet'], check=True, stdout=subprocess.DEVNULL)\n"
             "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env).stdout
    seconds, max_rss_kib = out.split()
    return float(seconds), float(max_rss_kib) / 1024


def main(argv=None) -> int:
    """Run the benchmark; print the table and (unless --no-readme) update benchmarks/README.md."""
    parser = argparse.ArgumentParser(description="Benchmark survey scoring (issue 4).")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=5_000_000)
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs for the timed comparisons")
    parser.add_argument("--no-readme", action="store_true", help="print only; do not update benchmarks/README.md")
    parser.add_argument("--note", default="", help="a remark for the README (e.g. machine load)")
    args = parser.parse_args(argv)
    n_probabilities = len(bayescramp.load_model().default_targets)
    lines = []

    def report(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    with tempfile.TemporaryDirectory(dir=ROOT / "benchmarks") as folder:
        folder = Path(folder)
        small, big = folder / "survey.csv", folder / "survey_big.csv"
        print(f"simulating {args.rows:,} and {args.big_rows:,} rows ...", flush=True)
        simulate_csv(small, args.rows, seed=1)
        simulate_csv(big, args.big_rows, seed=2)
        pq.write_table(pa_csv.read_csv(small), folder / "survey.parquet")
        report(f"| case ({args.rows:,} rows unless stated) | seconds | vs floor |")
        report("|---|---:|---:|")

        floor, _ = best_of(args.repeats, csv_floor, small, folder / "floor.csv", n_probabilities)
        ours, summary = best_of(args.repeats, bayescramp.score_file, small, folder / "out.csv", progress=False)
        report(f"| floor: pyarrow.csv read_csv + write_csv (same-shaped output) | {floor:.2f} | 1.00x |")
        report(f"| score_file CSV -> CSV | {ours:.2f} | {ours / floor:.2f}x |")
        patterns = summary.n_patterns

        floor_pq, _ = best_of(args.repeats, parquet_floor, folder / "survey.parquet", folder / "floor.parquet",
                              n_probabilities)
        ours_pq, _ = best_of(args.repeats, bayescramp.score_file, folder / "survey.parquet",
                             folder / "out.parquet", progress=False)
        report(f"| floor: pyarrow.parquet read_table + write_table | {floor_pq:.2f} | 1.00x |")
        report(f"| score_file Parquet -> Parquet | {ours_pq:.2f} | {ours_pq / floor_pq:.2f}x |")

        cli_seconds, rss_small = cli_run(small, folder / "cli.csv")
        report(f"| `bayescramp score` CSV -> CSV (start-up included) | {cli_seconds:.2f} | "
               f"{cli_seconds / floor:.2f}x |")
        big_seconds, rss_big = cli_run(big, folder / "cli_big.csv")
        report(f"| `bayescramp score` CSV -> CSV, {args.big_rows:,} rows | {big_seconds:.2f} | |")

        dask_seconds, _ = timed(score_dask_file, small, folder / "dask.parquet", progress=False)
        report(f"| Dask LocalCluster (2 workers, threads), CSV -> Parquet parts | {dask_seconds:.2f} | "
               f"{dask_seconds / ours_pq:.2f}x local Parquet |")
        report("")
        report(f"Peak memory (max RSS) of `bayescramp score`: {rss_small:,.0f} MiB for {args.rows:,} rows, "
               f"{rss_big:,.0f} MiB for {args.big_rows:,} rows: ratio {rss_big / rss_small:.2f} "
               "(target <= 1.2, under 1 GiB).")
        report(f"Distinct evidence patterns propagated for {args.rows:,} rows: {patterns:,}.")
        startup, _ = timed(subprocess.run, [sys.executable, "-c", "import bayescramp.cli"], check=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
        report(f"`import bayescramp.cli` in a fresh interpreter: {startup:.2f} s (imports neither pgmpy, matplotlib "
               "nor dask).")

    machine = (f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/bench_scoring.py --rows {args.rows} "
               f"--big-rows {args.big_rows}` on {platform.machine()}, {os.cpu_count()} cores, Python "
               f"{platform.python_version()}, pyarrow {pa.__version__}, numpy {np.__version__}. {args.note}").strip()
    section = "\n".join([HEADING, "", machine, "", *lines, ""])
    if not args.no_readme:
        readme = ROOT / "benchmarks" / "README.md"
        text = readme.read_text() if readme.exists() else "# Benchmarks\n"
        pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.S | re.M)
        text = pattern.sub(section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
        readme.write_text(text)
        print(f"wrote {readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

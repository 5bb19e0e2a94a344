"""Dask: score cohorts that outgrow one machine, partition by partition.

:func:`score_dask` maps :func:`bayescramp.scoring.score_frame` over the partitions of a
Dask DataFrame (``map_partitions`` with an explicit ``meta``), so results equal the local
path row for row. :func:`score_dask_file` reads partitioned CSV or Parquet, scores it on a
Dask cluster (a ``LocalCluster`` when no scheduler address is given) and writes the output
atomically; ``bayescramp score --engine dask`` calls it.

Dask (``pip install "bayescramp[dask]"``) is needed only here: ``import bayescramp`` does
not import it. Workers of an existing cluster need the same environment (bayescramp and
its dependencies installed).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Sequence

import dask.dataframe as dd
import pandas as pd

from ._errors import InputError
from .codebook import Codebook, plan_columns, table_encoder
from .scoring import STATUS_IMPOSSIBLE, STATUS_OK, score_frame
from .survey import ScoreSummary, network_of, resolve_codebook
from .tabular import check_not_input, table_format

__all__ = ["score_dask", "score_dask_file"]


def score_dask(ddf: dd.DataFrame, *, model=None, codebook: Codebook | str | Path | None = None,
               targets: Sequence[str] | None = None, id_columns: Sequence[str] | None = None,
               keep_columns: Sequence[str] | None = None, on_invalid: str = "error",
               source: str = "dask DataFrame", unmatched: str = "warn") -> dd.DataFrame:
    """Posteriors for every row of a Dask DataFrame, lazily, one partition at a time.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        Evidence columns named like nodes, or the columns a codebook maps.
    model : Model, optional
        Default: the bundled default model. It is shipped to the workers.
    codebook : Codebook or path, optional
    targets : sequence of str, optional
    id_columns, keep_columns : sequence of str, optional
        Pass-through columns (default: the codebook's, else every non-evidence column).
    on_invalid : {"error", "flag"}
        As in :func:`bayescramp.score_file`; with ``error`` the first partition holding a bad
        cell raises :class:`~bayescramp.InputError` when the result is computed.
    source : str
        What the data is called in messages.
    unmatched : {"warn", "error", "ignore"}
        Columns that look like evidence but are not used, as in :func:`bayescramp.score_file`:
        reported once, when the graph is built (never from the workers).

    Returns
    -------
    dask.dataframe.DataFrame
        The columns of :meth:`bayescramp.Model.score`, partitioned like ``ddf``.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"id": range(4), "fatigue": ["yes", "no", None, "y"]})
    >>> scored = score_dask(dd.from_pandas(frame, npartitions=2))
    >>> scored.compute(scheduler="sync")["status"].tolist()
    ['ok', 'ok', 'ok', 'ok']
    """
    if not isinstance(ddf, dd.DataFrame):
        raise InputError(f"score_dask: got {type(ddf).__name__}; expected a dask DataFrame (use score_file for "
                         "files and Model.score for pandas DataFrames).")
    network = network_of(model)
    book = resolve_codebook(codebook)
    plan_columns(network, [str(c) for c in ddf.columns], book, id_columns=id_columns, keep_columns=keep_columns,
                 source=source, unmatched=unmatched)
    encoder = partial(table_encoder(book, id_columns=id_columns, keep_columns=keep_columns, unmatched="ignore"),
                      source=source)
    meta = score_frame(network, ddf._meta, targets=targets, encoder=encoder, on_invalid=on_invalid, source=source)
    return ddf.map_partitions(_score_partition, network, targets, encoder, on_invalid, meta.dtypes.to_dict(), source,
                              meta=meta, partition_info=None)


def _score_partition(partition: pd.DataFrame, network, targets, encoder, on_invalid, dtypes, source: str,
                     partition_info=None) -> pd.DataFrame:
    number = partition_info["number"] if partition_info else 0
    scored = score_frame(network, partition, targets=targets, encoder=encoder, on_invalid=on_invalid,
                         row_label=lambda r: f"partition {number}, row {r + 1}", source=source)
    scored.index = partition.index
    return scored.astype(dtypes)


def _read(path: Path) -> dd.DataFrame:
    text = str(path)
    kind = "parquet" if path.is_dir() or text.lower().endswith(".parquet") else None
    if kind is None:
        kind = table_format(text.replace("*", "x"))
    if not any(Path(p).exists() for p in _expand(text)):
        raise InputError(f"{path}: no such input file or folder; expected CSV (a file or a glob such as "
                         "'part-*.csv') or Parquet (a file or a folder of parts).")
    if kind == "parquet":
        return dd.read_parquet(text)
    return dd.read_csv(text, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig",
                       blocksize="64MB" if kind == "csv" else None)


def _expand(text: str) -> list[str]:
    import glob

    return glob.glob(text) if any(ch in text for ch in "*?[") else [text]


def score_dask_file(input: str | Path, output: str | Path, *, model=None,
                    codebook: Codebook | str | Path | None = None, targets: Sequence[str] | None = None,
                    id_columns: Sequence[str] | None = None, keep_columns: Sequence[str] | None = None,
                    on_invalid: str = "error", scheduler: str | None = None, progress: bool = True,
                    chunk_size: int | None = None, unmatched: str = "warn") -> ScoreSummary:
    """Score partitioned CSV or Parquet on a Dask cluster and write the output atomically.

    Parameters
    ----------
    input : str or Path
        A CSV file or glob (``"survey/part-*.csv"``), a Parquet file or a folder of Parquet parts.
    output : str or Path
        ``.parquet``: a folder of Parquet parts (one per partition); ``.csv``/``.csv.gz``:
        one file. Written beside the destination and renamed only on success.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); default a ``LocalCluster``
        on this machine.
    progress : bool
        Show a progress bar (partitions done) on stderr.
    chunk_size : int, optional
        Ignored (Dask partitions set the chunking); accepted so the CLI passes the same options.

    Other parameters are as in :func:`score_dask`.

    Returns
    -------
    ScoreSummary
    """
    from distributed import Client, LocalCluster, as_completed
    from tqdm import tqdm

    started = time.perf_counter()
    input, output = Path(input), Path(output)
    kind = table_format(output)
    if not output.parent.exists():
        raise InputError(f"{output}: the output folder {output.parent} does not exist; expected an existing folder "
                         "(create it first).")
    check_not_input(output, [input, *_expand(str(input))])
    ddf = _read(input)
    _, _, found = plan_columns(network_of(model), [str(c) for c in ddf.columns], resolve_codebook(codebook),
                               id_columns=id_columns, keep_columns=keep_columns, source=str(input),
                               unmatched="ignore")
    scored = score_dask(ddf, model=model, codebook=codebook, targets=targets, id_columns=id_columns,
                        keep_columns=keep_columns, on_invalid=on_invalid, source=str(input), unmatched=unmatched)
    temporary = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.", suffix=".partial"))
    parts = temporary / "parts"
    parts.mkdir()
    counts = scored.map_partitions(_write_part, str(parts), "parquet" if kind == "parquet" else kind,
                                   meta=pd.DataFrame({"status": pd.Series([], dtype=object),
                                                      "n": pd.Series([], dtype="int64")}),
                                   partition_info=None)
    cluster = None
    try:
        if scheduler:
            client = Client(scheduler)
        else:
            cluster = LocalCluster(n_workers=min(2, os.cpu_count() or 1), threads_per_worker=1, processes=False,
                                   dashboard_address=None)
            client = Client(cluster)
        with client:
            futures = client.compute(counts.to_delayed())
            with tqdm(total=len(futures), unit=" partitions", disable=not progress, file=sys.stderr,
                      desc="scoring", leave=False) as bar:
                for _ in as_completed(futures):
                    bar.update(1)
            status_counts = pd.concat(client.gather(futures))
        if kind == "parquet":
            _replace(parts, output)
        else:
            joined = temporary / output.name
            with open(joined, "wb") as sink:
                for part in sorted(parts.iterdir()):
                    with open(part, "rb") as piece:
                        shutil.copyfileobj(piece, sink)
            os.chmod(joined, 0o644)
            _replace(joined, output)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        if cluster is not None:
            cluster.close()
    totals = status_counts.groupby("status")["n"].sum()
    invalid = int(totals[[str(k).startswith("invalid") for k in totals.index]].sum())
    return ScoreSummary(input=input, output=output, n_rows=int(totals.sum()), n_ok=int(totals.get(STATUS_OK, 0)),
                        n_impossible=int(totals.get(STATUS_IMPOSSIBLE, 0)), n_invalid=invalid,
                        seconds=time.perf_counter() - started,
                        unmatched_columns=found if unmatched != "ignore" else {})


def _write_part(scored: pd.DataFrame, folder: str, kind: str, partition_info=None) -> pd.DataFrame:
    """Write one scored partition as ``part.NNNNN.<kind>`` (CSV header only in part 0); return its status counts."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    number = partition_info["number"] if partition_info else 0
    table = pa.Table.from_pandas(scored, preserve_index=False)
    path = Path(folder) / f"part.{number:05d}.{kind}"
    if kind == "parquet":
        pq.write_table(table, path)
    else:
        sink = pa.CompressedOutputStream(str(path), "gzip") if kind == "csv.gz" else str(path)
        pa_csv.write_csv(table, sink, write_options=pa_csv.WriteOptions(include_header=number == 0))
        if kind == "csv.gz":
            sink.close()
    counts = scored["status"].value_counts()
    return pd.DataFrame({"status": counts.index.astype(object), "n": counts.to_numpy(dtype="int64")})


def _replace(source: Path, destination: Path) -> None:
    """Move ``source`` onto ``destination`` (a file or a folder), replacing what was there."""
    if destination.is_dir():
        old = destination.with_name(f".{destination.name}.old")
        os.replace(destination, old)
        os.replace(source, destination)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(source, destination)


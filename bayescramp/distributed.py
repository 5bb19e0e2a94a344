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

import glob
import logging
import os
import shutil
import sys
import time
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Iterator, Sequence

import dask.dataframe as dd
import pandas as pd

from ._arguments import renamed
from ._errors import BayescrampError, InputError, one_of
from .codebook import Codebook, plan_columns, resolve_codebook, table_encoder
from .evidence import BatchEvidence
from .scoring import STATUS_IMPOSSIBLE, STATUS_OK, invalid_counts, score_frame
from .survey import ScoreSummary, check_file, network_of
from .tabular import atomic_path, check_not_input, input_format, table_format, temporary_folder

__all__ = ["score_dask", "score_dask_file", "DASK_CSV_BLOCK_SIZE"]

#: Bytes of a CSV file per Dask partition (a gzip file is one partition).
DASK_CSV_BLOCK_SIZE = "64MB"


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
    network, encoder, meta = _prepare(ddf, model=model, codebook=codebook, targets=targets, id_columns=id_columns,
                                      keep_columns=keep_columns, on_invalid=on_invalid, source=source,
                                      unmatched=unmatched)
    return ddf.map_partitions(_score_partition, network, targets, encoder, on_invalid, meta.dtypes.to_dict(), source,
                              meta=meta, partition_info=None)


def _prepare(ddf, *, model, codebook, targets, id_columns, keep_columns, on_invalid, source, unmatched):
    """The network, the partition encoder and the output's ``meta``, checked on the columns (not the rows)."""
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
    return network, encoder, meta


def _score_partition(partition: pd.DataFrame, network, targets, encoder, on_invalid, dtypes, source: str,
                     partition_info=None) -> pd.DataFrame:
    number = partition_info["number"] if partition_info else 0
    partition, undecoded = _undecoded_as_bytes(partition)
    scored = score_frame(network, partition, targets=targets, encoder=encoder, on_invalid=on_invalid,
                         row_label=lambda r: f"partition {number}, row {r + 1}", source=source)
    scored.index = partition.index
    copied = [c for c in undecoded if c in scored.columns]
    if copied:
        raise InputError(f"{source}, partition {number}, column {copied[0]!r}: holds bytes that are not UTF-8 text; "
                         "expected UTF-8 (re-save the file as UTF-8).")
    return scored.astype(dtypes)


def _undecoded_as_bytes(partition: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Cells read with ``surrogateescape`` that held bytes that are not UTF-8, back to those bytes; which columns.

    Evidence cells then read as the local engine reads them (flagged or refused as not UTF-8).
    """
    columns = {}
    for column in partition.columns:
        values = partition[column]
        if values.dtype != object:
            continue
        try:
            "\x00".join(v for v in values if isinstance(v, str)).encode("utf-8")
        except UnicodeEncodeError:
            columns[column] = values.map(lambda v: _raw(v) if isinstance(v, str) else v)
    return (partition.assign(**columns) if columns else partition), list(columns)


def _raw(text: str) -> str | bytes:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")
    return text


def _input_files(path: Path) -> tuple[list[Path], str]:
    """The files of a Dask input (a file, a glob, a folder of Parquet parts) and whether they are CSV or Parquet."""
    text = str(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(".parquet")
                       and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts))
        if not files:
            raise InputError(f"{path}: is a folder holding no Parquet parts (*.parquet); expected a folder of Parquet "
                             "parts, a CSV or Parquet file, or a glob of CSV parts such as 'part-*.csv'.")
    elif any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
        if not files:
            raise InputError(f"{path}: matches no file; expected a glob of CSV or Parquet parts, such as "
                             "'part-*.csv'.")
    else:
        files = [path]
    kinds = {p: input_format(p) if p.is_file() else table_format(p) for p in files}
    if len({k == "parquet" for k in kinds.values()}) > 1:
        raise InputError(f"{path}: holds both CSV and Parquet files; expected parts of one format.")
    return files, next(iter(kinds.values()))


def _read(path: Path, files: Sequence[Path], kind: str, columns: Sequence[str], *, whole_files: bool) -> dd.DataFrame:
    if kind == "parquet":
        return dd.read_parquet(str(path) if path.is_dir() else [str(p) for p in files])
    # surrogateescape: bytes that are not UTF-8 are reported as the local engine reports them
    header = 4 * sum(len(c) + 3 for c in columns) + 1024
    return dd.read_csv([str(p) for p in files], dtype=object, keep_default_na=False, na_values=[""],
                       encoding="utf-8-sig", encoding_errors="surrogateescape",
                       compression="gzip" if kind == "csv.gz" else None,
                       blocksize=None if whole_files or kind == "csv.gz" else DASK_CSV_BLOCK_SIZE,
                       sample=max(256_000, header))


@renamed(input="path")
def score_dask_file(path: str | Path, output: str | Path, *, model=None,
                    codebook: Codebook | str | Path | None = None, targets: Sequence[str] | None = None,
                    id_columns: Sequence[str] | None = None, keep_columns: Sequence[str] | None = None,
                    on_invalid: str = "error", scheduler: str | None = None, progress: bool = True,
                    chunk_size: int | None = None, unmatched: str = "warn") -> ScoreSummary:
    """Score partitioned CSV or Parquet on a Dask cluster and write the output atomically.

    Every file is first checked as the local engine checks it (format, header, columns,
    codebook); if the cluster then fails on a row, the input is read again locally to say what
    is wrong in the local engine's words (file, line, column). Worker logs are silenced while it
    runs: errors come back as one message.

    Parameters
    ----------
    path : str or Path
        A CSV file or glob (``"survey/part-*.csv"``), a Parquet file or a folder of Parquet parts
        (``input=`` is its deprecated spelling).
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
    started = time.perf_counter()
    path, output = Path(path), Path(output)
    kind = table_format(output)
    if not output.parent.is_dir():
        raise InputError(f"{output}: the output folder {output.parent} does not exist; expected an existing folder "
                         "(create it first).")
    files, input_kind = _input_files(path)
    check_not_input(output, [path, *files])
    network = network_of(model)
    book = resolve_codebook(codebook)
    options = {"model": network, "codebook": book, "id_columns": id_columns, "keep_columns": keep_columns,
               "on_invalid": on_invalid}
    columns = None
    for part in files:
        seen = check_file(part, output=output, read_rows=False, **options)
        if columns is not None and seen != columns:
            raise InputError(f"{part}: has columns {one_of(seen)}, but {files[0]} has {one_of(columns)}; expected "
                             "every part to have the same columns.")
        columns = seen
    _, _, found = plan_columns(network, columns, book, id_columns=id_columns, keep_columns=keep_columns,
                               source=str(path), unmatched=unmatched)
    try:
        totals = _run(path, files, input_kind, columns, output, kind, network, book, targets, id_columns,
                      keep_columns, on_invalid, scheduler, progress, whole_files=False)
    except _WorkersFailed as failure:
        for part in files:  # the local engine's words for what is wrong
            check_file(part, **options)
        if input_kind != "csv":
            raise failure.as_input_error(path) from None
        # a quoted line break across a Dask block boundary: read each CSV file as one partition
        try:
            totals = _run(path, files, input_kind, columns, output, kind, network, book, targets, id_columns,
                          keep_columns, on_invalid, scheduler, progress, whole_files=True)
        except _WorkersFailed as again:
            raise again.as_input_error(path) from None
    statuses = totals[totals["key"].str.startswith("status:")]
    by_status = dict(zip(statuses["key"].str[len("status:"):], statuses["n"]))
    by_column = {key[len("column:"):]: int(n) for key, n in zip(totals["key"], totals["n"])
                 if key.startswith("column:")}
    return ScoreSummary(input=path, output=output, n_rows=int(statuses["n"].sum()),
                        n_ok=int(by_status.get(STATUS_OK, 0)), n_impossible=int(by_status.get(STATUS_IMPOSSIBLE, 0)),
                        n_invalid=int(sum(n for k, n in by_status.items() if str(k).startswith("invalid"))),
                        invalid_by_column=by_column, seconds=time.perf_counter() - started,
                        unmatched_columns=found if unmatched != "ignore" else {})


class _WorkersFailed(Exception):
    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error

    def as_input_error(self, path: Path) -> InputError:
        if isinstance(self.error, BayescrampError):
            return InputError(self.error.problems)
        return InputError(f"{path}: the Dask run failed ({type(self.error).__name__}: {str(self.error).strip()}), "
                          "although the local engine reads every row without error; expected workers with the same "
                          "environment as this machine (bayescramp and its dependencies, same versions) and access "
                          "to the input and output paths (or use --engine local).")


def _run(path, files, input_kind, columns, output, kind, network, book, targets, id_columns, keep_columns,
         on_invalid, scheduler, progress, *, whole_files: bool) -> pd.DataFrame:
    """Score on the cluster and write ``output``; the per-partition counts, summed."""
    import dask
    import distributed  # noqa: F401 - imported before its loggers are quietened (importing sets their levels)

    # Arrow strings cannot hold undecoded bytes: keep text columns as Python objects
    with dask.config.set({"dataframe.convert-string": False}):
        try:
            ddf = _read(path, files, input_kind, columns, whole_files=whole_files)  # parses a sample now
        except Exception as error:
            raise _WorkersFailed(error) from None
        return _score_on_cluster(ddf, path, output, kind, network, book, targets, id_columns, keep_columns,
                                 on_invalid, scheduler, progress)


def _score_on_cluster(ddf, path, output, kind, network, book, targets, id_columns, keep_columns, on_invalid,
                      scheduler, progress) -> pd.DataFrame:
    from tqdm import tqdm

    source = str(path)
    network, encoder, meta = _prepare(ddf, model=network, codebook=book, targets=targets, id_columns=id_columns,
                                      keep_columns=keep_columns, on_invalid=on_invalid, source=source,
                                      unmatched="ignore")
    with (atomic_path(output, folder=kind == "parquet") as temporary,
          temporary_folder(output) if kind != "parquet" else nullcontext(temporary) as parts):
        counts = ddf.map_partitions(_score_and_write, network, targets, encoder, on_invalid, meta.dtypes.to_dict(),
                                    source, str(parts), kind,
                                    meta=pd.DataFrame({"key": pd.Series([], dtype=object),
                                                       "n": pd.Series([], dtype="int64")}),
                                    partition_info=None)
        with _quiet_dask_logs(), _client(scheduler) as client:
            futures = client.compute(counts.to_delayed())
            try:
                with tqdm(total=len(futures), unit=" partitions", disable=not progress, file=sys.stderr,
                          desc="scoring", leave=False) as bar:
                    for future in _as_completed(futures):
                        if future.status == "error":
                            raise _WorkersFailed(future.exception())
                        bar.update(1)
                totals = pd.concat(client.gather(futures))
            finally:
                client.cancel(futures)
        if kind != "parquet":
            with open(temporary, "wb") as sink:
                for part in sorted(parts.iterdir()):
                    with open(part, "rb") as piece:
                        shutil.copyfileobj(piece, sink)
    return totals.groupby("key", as_index=False)["n"].sum()


def _as_completed(futures):
    from distributed import as_completed

    return as_completed(futures)


@contextmanager
def _client(scheduler: str | None) -> Iterator:
    """A client of the scheduler at ``scheduler``, or of a LocalCluster started (and closed) here."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as error:
            raise InputError(f"--scheduler {scheduler}: cannot connect ({error}); expected the address of a running "
                             "Dask scheduler, such as tcp://HOST:8786.") from None
        with client:
            yield client
        return
    cluster = LocalCluster(n_workers=min(2, os.cpu_count() or 1), threads_per_worker=1, processes=False,
                           dashboard_address=None)
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


@contextmanager
def _quiet_dask_logs() -> Iterator[None]:
    """Silence Dask's loggers (a failed task logs its traceback); errors come back as one message instead."""
    names = ["distributed", *(n for n in list(logging.root.manager.loggerDict) if n.startswith("distributed."))]
    loggers = [logging.getLogger(n) for n in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _score_and_write(partition: pd.DataFrame, network, targets, encoder, on_invalid: str, dtypes, source: str,
                     folder: str, kind: str, partition_info=None) -> pd.DataFrame:
    """Score one partition and write it as ``part.NNNNN.<kind>`` (CSV header only in part 0); return its counts.

    Counts are rows per status (``status:ok``, ...) and, for flagged rows, rows with a bad cell
    per column (``column:NAME``).
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    scored = _score_partition(partition, network, targets, encoder, on_invalid, dtypes, source, partition_info)
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
    keys = ["status:" + str(k) for k in counts.index]
    values = [int(n) for n in counts.to_numpy()]
    if scored["status"].str.startswith("invalid").any():
        evidence = BatchEvidence.from_frame(network, _undecoded_as_bytes(partition)[0], encoder=encoder)
        for column, n in invalid_counts(evidence).items():
            keys.append("column:" + column)
            values.append(n)
    return pd.DataFrame({"key": pd.Series(keys, dtype=object), "n": pd.Series(values, dtype="int64")})

"""Survey files in, posteriors out: streaming CSV, gzip CSV and Parquet scoring.

:func:`score_file` reads a file in chunks with Arrow (``pyarrow.csv.open_csv``,
``pyarrow.parquet.ParquetFile.iter_batches``), encodes each chunk's evidence columns with
Arrow dictionary encoding (:mod:`bayescramp.evidence`, :mod:`bayescramp.codebook`), scores
each distinct evidence pattern once for the whole file (:class:`~bayescramp.scoring.PatternCache`)
and writes each chunk as it is scored (``CSVWriter``, ``ParquetWriter``), so peak memory
does not grow with the file. The output goes to a temporary file beside the destination
and is renamed only when everything succeeded: a bad cell (with ``on_invalid="error"``), a
broken file or an interruption leaves nothing at the output path.

Row numbers in messages are as in the file: for CSV the header is row 1, so the first
data row is row 2; Parquet rows are numbered from 1.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ._arguments import renamed
from ._errors import EvidenceError, InputError
from .codebook import Codebook, check_unique_columns, plan_columns, resolve_codebook
from .engine import CompiledNetwork, compile_spec
from .evidence import BatchEvidence, encode_codes
from .priors import load_spec
from .scoring import (
    MAX_LISTED_PROBLEMS,
    PatternCache,
    cell_problems,
    check_targets,
    invalid_counts,
    invalid_error,
    score_evidence,
    target_columns,
)
from .tabular import atomic_path, check_not_input, input_format, table_format

__all__ = ["score_file", "ScoreSummary", "example_paths", "DEFAULT_CHUNK_SIZE", "network_of", "resolve_codebook",
           "check_file", "CSV_BLOCK_SIZE"]

#: Rows read, scored and written at a time.
DEFAULT_CHUNK_SIZE = 100_000
_OUTPUT_TAIL = ("evidence_probability", "log_evidence_probability", "status")


def example_paths() -> tuple[Path, Path]:
    """The bundled example survey and its codebook: ``(example_survey.csv, example_codebook.toml)``.

    Examples
    --------
    >>> survey, codebook = example_paths()
    >>> survey.name, codebook.name
    ('example_survey.csv', 'example_codebook.toml')
    """
    folder = resources.files("bayescramp").joinpath("data")
    return Path(str(folder.joinpath("example_survey.csv"))), Path(str(folder.joinpath("example_codebook.toml")))


def network_of(model: Any) -> CompiledNetwork:
    """The compiled network of a :class:`~bayescramp.Model`, a compiled network, or ``None`` (the default model).

    Examples
    --------
    >>> len(network_of(None).names)
    25
    """
    if model is None:
        return compile_spec(load_spec())
    if isinstance(model, CompiledNetwork):
        return model
    network = getattr(model, "network", None)
    if isinstance(network, CompiledNetwork):
        return network
    raise InputError(f"model: got {type(model).__name__}; expected a bayescramp Model (load_model()) or None for "
                     "the default model.")


@dataclass
class ScoreSummary:
    """What :func:`score_file` did.

    Attributes
    ----------
    input, output : Path
    n_rows : int
        Rows read and written (one output row per input row).
    n_ok, n_impossible, n_invalid : int
        Rows scored; rows whose evidence has probability zero under the model (no
        posterior); rows flagged invalid (``on_invalid="flag"``; no posterior).
    invalid_by_column : dict
        Column -> number of rows flagged because of a bad cell in it (a row with bad cells in
        two columns counts under both).
    n_patterns : int or None
        Distinct evidence patterns propagated through the engine (None when not counted, as with Dask).
    seconds : float
        Wall time.
    unmatched_columns : dict
        Columns that look like evidence but were not used -> the node or codebook column they resemble.
    """

    input: Path
    output: Path
    n_rows: int = 0
    n_ok: int = 0
    n_impossible: int = 0
    n_invalid: int = 0
    invalid_by_column: dict[str, int] = field(default_factory=dict)
    n_patterns: int | None = None
    seconds: float = 0.0
    unmatched_columns: dict[str, str] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        """Throughput."""
        return self.n_rows / self.seconds if self.seconds > 0 else float("inf")

    def __str__(self) -> str:
        flagged = f"{self.n_invalid:,} flagged invalid"
        if self.invalid_by_column:
            flagged += " (" + ", ".join(f"{column}: {n:,}" for column, n in self.invalid_by_column.items()) + ")"
        return (f"scored {self.n_rows:,} rows of {self.input.name} in {self.seconds:.1f} s "
                f"({self.rows_per_second:,.0f} rows/s): {self.n_ok:,} ok, {self.n_impossible:,} impossible evidence, "
                f"{flagged}; " + (f"{self.n_patterns:,} distinct evidence patterns; " if self.n_patterns is not None
                                  else "") + f"wrote {Path(self.output).resolve()}" + self._unmatched_line())

    def _unmatched_line(self) -> str:
        if not self.unmatched_columns:
            return ""
        listed = ", ".join(f"{column!r} (like {like})" for column, like in self.unmatched_columns.items())
        return (f"\nnot used: {len(self.unmatched_columns)} column(s) that look like evidence: {listed}; rename them "
                "to node names or map them in a codebook (--unmatched error refuses such files).")


#: Bytes the streaming CSV reader parses at a time; a longer row makes it start again with larger blocks.
CSV_BLOCK_SIZE = 1 << 20
_MAX_BLOCK_SIZE = 1 << 30
_EXPECT_CSV = "expected comma-separated UTF-8 text with a header row"


@contextmanager
def _any_field_size() -> Iterator[None]:
    """Let Python's csv module read fields of any length (its default limit is 128 KiB)."""
    previous = csv.field_size_limit()
    csv.field_size_limit(2 ** 31 - 1)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _undecoded(text: str) -> bool:
    """Whether text decoded with ``surrogateescape`` held bytes that are not UTF-8."""
    return any("\udc80" <= ch <= "\udcff" for ch in text)


class _Source:
    """A table file read in record batches: its header, where each row is, and its batches.

    CSV is parsed by Arrow's streaming reader in blocks of ``block_size`` bytes with line breaks
    allowed inside quoted fields; a row longer than a block makes the reader start again with
    larger blocks (skipping the rows already delivered); a cell holding a carriage return (Arrow
    may have dropped the line feed after it, when a quoted CR LF straddles two of its blocks)
    makes Python's csv module read the rest. The header is read with Python's csv module, so it
    may be of any length and need not end with a line break. Rows are located in
    the file (``line N``, counting physical lines: the header, blank lines and line breaks
    inside quoted fields) only on the error path, by a second scan with Python's csv module.
    """

    def __init__(self, path: Path, *, block_size: int | None = None):
        self.path = path
        self.name = path.name
        table_format(path)
        if not path.is_file():
            raise InputError(f"{path}: no such input file; expected an existing .csv, .csv.gz or .parquet file.")
        self.kind = input_format(path)
        self.block_size = block_size or CSV_BLOCK_SIZE
        self.n_rows: int | None = None
        if self.kind == "parquet":
            try:
                self._parquet = pq.ParquetFile(path)
            except (pa.ArrowException, OSError) as error:
                raise InputError(f"{path}: cannot be read as Parquet ({error}); expected a Parquet file (is it "
                                 "another format renamed?).") from None
            self.columns = list(self._parquet.schema_arrow.names)
            self.schema = self._parquet.schema_arrow
            self.n_rows = self._parquet.metadata.num_rows
        else:
            self.columns, self._header_bytes = self._csv_header()
            self.schema = None

    def _text(self) -> io.TextIOWrapper:
        handle = gzip.open(self.path, "rb") if self.kind == "csv.gz" else open(self.path, "rb")
        # surrogateescape: undecodable bytes survive as lone surrogates, found and reported by the caller
        return io.TextIOWrapper(handle, encoding="utf-8", errors="surrogateescape", newline="")

    def _unreadable(self, error: Exception, line: int | None = None) -> InputError:
        where = f"{self.path}, line {line}" if line else str(self.path)
        return InputError(f"{where}: cannot be read as CSV ({error}); {_EXPECT_CSV}.")

    def _csv_header(self) -> tuple[list[str], int]:
        """The header's names and its length in bytes (blank lines before it included)."""
        n_bytes = 0

        def lines(text):
            nonlocal n_bytes
            for line in text:
                n_bytes += len(line.encode("utf-8", "surrogateescape"))
                yield line

        reader = None
        try:
            with self._text() as text, _any_field_size():
                reader = csv.reader(lines(text))
                names = next((row for row in reader if row), None)
        except (csv.Error, OSError, EOFError, gzip.BadGzipFile) as error:
            raise self._unreadable(error, reader.line_num if reader is not None else None) from None
        if names is None:
            raise InputError(f"{self.path}: the file is empty; expected a header row naming the columns, then one row "
                             "per person.")
        names[0] = names[0].removeprefix("\ufeff")
        if any(_undecoded(name) for name in names):
            raise InputError(f"{self.path}, line {reader.line_num} (the header): holds bytes that are not UTF-8 "
                             "text; expected UTF-8 column names (re-save the file as UTF-8).")
        return names, n_bytes

    def batches(self, wanted: Sequence[str], chunk_size: int) -> Iterator[pa.RecordBatch]:
        """Record batches of the ``wanted`` columns (CSV cells as bytes, Parquet as stored)."""
        if self.kind == "parquet":
            try:
                yield from self._parquet.iter_batches(batch_size=chunk_size, columns=list(wanted))
            except (pa.ArrowException, OSError) as error:
                raise InputError(f"{self.path}: cannot be read as Parquet ({error}); expected an intact Parquet "
                                 "file.") from None
            return
        delivered = 0
        block_size = self.block_size
        while True:
            skip = delivered
            try:
                for batch in self._csv_batches(wanted, block_size):
                    if _carriage_return_in_a_cell(batch):
                        raise _LineFeedMayBeLost
                    if skip:
                        if batch.num_rows <= skip:
                            skip -= batch.num_rows
                            continue
                        batch, skip = batch.slice(skip), 0
                    delivered += batch.num_rows
                    yield batch
                return
            except _LineFeedMayBeLost:
                # Arrow drops the line feed that follows a quoted CR ending one of its blocks (pyarrow 26); the
                # CR stays in the cell, so a cell holding a CR may have lost one: Python's csv module reads the rest
                yield from self._python_batches(wanted, chunk_size, skip=delivered)
                return
            except pa.ArrowInvalid as error:
                if "columns, got" in str(error):
                    raise self.ragged_error(error) from None
                if "straddl" not in str(error) or block_size >= _MAX_BLOCK_SIZE:
                    raise self._unreadable(error) from None
                block_size *= 4
            except (pa.ArrowException, OSError, EOFError) as error:
                raise self._unreadable(error) from None

    def _csv_batches(self, wanted: Sequence[str], block_size: int) -> Iterator[pa.RecordBatch]:
        stream = pa.input_stream(str(self.path), compression="gzip" if self.kind == "csv.gz" else None)
        with stream:
            stream.read(self._header_bytes)
            # small blocks: the streaming reader reads ahead several blocks, so this bounds its memory
            read_options = pa_csv.ReadOptions(block_size=block_size, column_names=self.columns, use_threads=False)
            # no invalid_row_handler: Arrow decodes a ragged row's text as UTF-8 before calling it, and fails on
            # other bytes; the first ragged row stops the read and ragged_error() finds them all
            parse_options = pa_csv.ParseOptions(newlines_in_values=True)
            convert_options = pa_csv.ConvertOptions(column_types={c: pa.binary() for c in wanted},
                                                    include_columns=list(wanted))
            try:
                reader = pa_csv.open_csv(stream, read_options=read_options, parse_options=parse_options,
                                         convert_options=convert_options)
            except pa.ArrowInvalid as error:
                if "Empty CSV" in str(error):  # a header and nothing else
                    return
                raise
            try:
                yield from reader
            finally:
                reader.close()

    def _python_batches(self, wanted: Sequence[str], chunk_size: int, *, skip: int) -> Iterator[pa.RecordBatch]:
        """The batches of :meth:`batches` (cells as bytes), read by Python's csv module, after ``skip`` rows."""
        positions = [self.columns.index(c) for c in wanted]
        cells: list[list[bytes]] = [[] for _ in wanted]
        index = -1
        for _, row in self._records():
            if len(row) != len(self.columns):
                raise self.ragged_error(ValueError("a row has the wrong number of fields"))
            index += 1
            if index < skip:
                continue
            for values, position in zip(cells, positions):
                values.append(row[position].encode("utf-8", "surrogateescape"))
            if len(cells[0]) == chunk_size:
                yield _binary_batch(wanted, cells)
                cells = [[] for _ in wanted]
        if cells and cells[0]:
            yield _binary_batch(wanted, cells)

    def _records(self) -> Iterator[tuple[int, list[str]]]:
        """``(first line, fields)`` of every record after the header, blank lines left out."""
        with self._text() as text, _any_field_size():
            reader = csv.reader(text)
            start, seen_header = 1, False
            for row in reader:
                first, start = start, reader.line_num + 1
                if not row:
                    continue
                if seen_header:
                    yield first, row
                seen_header = True

    def locate(self, rows: Iterable[int]) -> dict[int, str]:
        """Where data rows are (0-based, as delivered): ``"line N"`` for CSV, ``"row N"`` for Parquet."""
        wanted = sorted(set(rows))
        if self.kind == "parquet":
            return {r: f"row {r + 1}" for r in wanted}
        found: dict[int, str] = {}
        if not wanted:
            return found
        n_columns = len(self.columns)
        index = -1
        for first, row in self._records():
            if len(row) != n_columns:  # ragged rows are not delivered
                continue
            index += 1
            if index == wanted[len(found)]:
                found[index] = f"line {first}"
                if len(found) == len(wanted):
                    break
        return found

    def ragged_error(self, error: Exception) -> InputError:
        """Every ragged row, located by a second (error-path only) scan with Python's csv module."""
        expected = len(self.columns)
        listed = []
        n_ragged = 0
        for first, row in self._records():
            if len(row) != expected:
                n_ragged += 1
                if len(listed) < MAX_LISTED_PROBLEMS:
                    listed.append(f"{self.path}, line {first}: has {len(row)} fields; expected {expected} (one per "
                                  "column of the header).")
        if not listed:
            return self._unreadable(error)
        if n_ragged > len(listed):
            listed.append(f"... and {n_ragged - len(listed)} more row(s) with the wrong number of fields.")
        listed.append("Every row needs one field per header column (quote fields holding commas).")
        return InputError(listed)


class _LineFeedMayBeLost(Exception):
    pass


def _carriage_return_in_a_cell(batch: pa.RecordBatch) -> bool:
    """Whether a cell holds a carriage return (rare in survey data: they are line ends, outside the cells)."""
    import pyarrow.compute as pc

    return any((pa.types.is_binary(column.type) or pa.types.is_string(column.type))
               and bool(pc.sum(pc.count_substring(column, "\r")).as_py()) for column in batch.columns)


def _binary_batch(names: Sequence[str], cells: Sequence[list[bytes]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(values, type=pa.binary()) for values in cells], names=list(names))


_ROW_TOKEN = re.compile("\x00(\\d+)\x00")


def _row_token(row: int) -> str:
    """A placeholder for a data row in a message, replaced by :func:`_located` once rows are found in the file."""
    return f"\x00{row}\x00"


def _located(problems: Sequence[str], source: _Source) -> list[str]:
    rows = [int(m) for problem in problems for m in _ROW_TOKEN.findall(problem)]
    where = source.locate(rows)
    return [_ROW_TOKEN.sub(lambda m: where.get(int(m[1]), f"data row {int(m[1]) + 1}"), problem)
            for problem in problems]


def _chunks(batches: Iterator[pa.RecordBatch], chunk_size: int) -> Iterator[pa.Table]:
    """Re-cut record batches into tables of exactly ``chunk_size`` rows (the last one shorter)."""
    pending: list[pa.RecordBatch] = []
    n_pending = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        n_pending += batch.num_rows
        while n_pending >= chunk_size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, chunk_size).combine_chunks()
            rest = table.slice(chunk_size)
            pending = rest.to_batches() if rest.num_rows else []
            n_pending = rest.num_rows
    if n_pending:
        yield pa.Table.from_batches(pending).combine_chunks()


def _text_column(values: pa.Array, column: str, source: _Source, offset: int) -> pa.Array:
    """A binary CSV column as UTF-8 text; undecodable cells are an error naming their lines."""
    try:
        return values.cast(pa.string())
    except pa.ArrowInvalid:
        pass
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(values)
    bad = np.array([_undecodable(v) for v in encoded.dictionary.to_pylist()] + [False])
    positions = encoded.indices.fill_null(len(bad) - 1).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(bad[positions])
    listed = [f"{source.path}, {_row_token(offset + int(r))}, column {column!r}: got "
              f"{encoded.dictionary[positions[r]].as_py()!r}, which is not UTF-8 text; expected UTF-8 (re-save the "
              "file as UTF-8)." for r in rows[:MAX_LISTED_PROBLEMS]]
    if len(rows) > len(listed):
        listed.append(f"... and {len(rows) - len(listed)} more such cell(s) in this chunk.")
    raise InputError(_located(listed, source))


def _undecodable(value: bytes | None) -> bool:
    if value is None:
        return False
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _float_column(values: np.ndarray, missing: np.ndarray | None) -> pa.Array:
    if missing is not None and missing.any():
        return pa.array(values, mask=missing)
    return pa.array(values)


@renamed(input="path")
def score_file(path: str | Path, output: str | Path, *, model=None, codebook: Codebook | str | Path | None = None,
               targets: Sequence[str] | None = None, id_columns: Sequence[str] | str | None = None,
               keep_columns: Sequence[str] | str | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
               on_invalid: str = "error", progress: bool = True, interval: float | None = None,
               n_draws: int = 1000, rng: np.random.Generator | int | None = None,
               explain: bool = False, unmatched: str = "warn") -> ScoreSummary:
    """Score every row of a survey file and write the posteriors, streaming and atomically.

    Parameters
    ----------
    path : str or Path
        The survey: ``.csv``, ``.csv.gz`` or ``.parquet``. CSV must be UTF-8 (a byte-order mark
        and CRLF line ends are fine) with a header row. (``input=`` is its deprecated spelling.)
    output : str or Path
        ``.csv``, ``.csv.gz`` or ``.parquet``; its folder must exist. Written to a temporary
        file beside it and renamed only on success.
    model : Model, optional
        Default: the bundled default model.
    codebook : Codebook or path, optional
        Maps the survey's columns and codes to nodes and states. Default: columns named
        like nodes hold state names or yes/no spellings.
    targets : sequence of str, optional
        Nodes to report (default: the ``*_deficiency`` nodes).
    id_columns, keep_columns : str or sequence of str, optional
        Columns copied to the output (default: the codebook's; without either, every column
        that is not evidence is copied).
    chunk_size : int
        Rows read, scored and written at a time; bounds memory.
    on_invalid : {"error", "flag"}
        ``error``: a cell that cannot be read stops the run, nothing is written and the
        message lists the first problems. ``flag``: every row is written; bad rows get
        ``status = "invalid: <reason>"`` and no posterior.
    progress : bool
        Show a progress bar (rows, rows/s) on stderr.
    interval : float, optional
        Also write ``p_<node>_lower`` and ``p_<node>_upper`` after each ``p_<node>``: the central
        ``interval`` credible bounds over ``n_draws`` joint draws of the parameters from their
        ranges (:mod:`bayescramp.uncertainty`). The same draws serve every chunk.
    n_draws : int
        Parameter draws for ``interval``.
    rng : numpy Generator or int seed, optional
        Seed of the draws (reproducible output).
    explain : bool
        Also write ``top_finding_<node>`` per target: the finding whose retraction lowers that
        posterior most (:func:`bayescramp.explain.top_findings`); empty when no finding raised it.
    unmatched : {"warn", "error", "ignore"}
        Columns that look like evidence but are not used (a near spelling of a node or codebook
        column, such as ``leg cramp`` or ``fatigue_2``): an
        :class:`~bayescramp.UnmatchedColumnsWarning` (and ``summary.unmatched_columns``), an
        :class:`InputError` before anything is read, or nothing. Column names match nodes and
        codebook columns ignoring case and surrounding spaces.

    Returns
    -------
    ScoreSummary
        Rows scored, flagged and impossible, the time, and where the output went
        (``str(summary)`` is a one-line report).

    Raises
    ------
    InputError
        Bad cells (``on_invalid="error"``), ragged rows, bytes that are not UTF-8 in
        pass-through columns, duplicate column names, no column informing the model, a
        missing file or output folder, an unreadable Parquet file. Nothing is written.

    Examples
    --------
    >>> import tempfile
    >>> survey, codebook = example_paths()
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     summary = score_file(survey, Path(folder) / "scores.parquet", codebook=codebook, progress=False)
    >>> summary.n_rows
    20000
    """
    started = time.perf_counter()
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise InputError(f"chunk_size: got {chunk_size!r}; expected a positive number of rows.")
    output = Path(output)
    network = network_of(model)
    plan = _Plan(path, network, codebook, id_columns=id_columns, keep_columns=keep_columns, on_invalid=on_invalid,
                 unmatched=unmatched, output=output)
    source, maps, passthrough = plan.source, plan.maps, plan.passthrough
    targets = check_targets(network, targets, [m.node for m in maps])
    extra = _ExtraColumns(network, targets, interval=interval, n_draws=n_draws, rng=rng, explain=explain,
                          model=model)
    schema = _output_schema(source, passthrough, [name for name, _, _ in target_columns(network, targets)],
                            interval=bool(interval), explain=explain)
    cache = PatternCache(network, [m.node for m in maps], [m.alphabet for m in maps], targets)
    summary = ScoreSummary(input=source.path, output=output,
                           unmatched_columns=plan.unmatched_columns if unmatched != "ignore" else {})
    bar = _progress_bar(progress, source.n_rows)
    try:
        with atomic_path(output) as temporary:
            writer = _writer(temporary, plan.output_kind, schema)
            try:
                for evidence, texts in plan.chunks(chunk_size, bar):
                    scored = score_evidence(network, evidence, targets, cache=cache)
                    writer.write_table(_output_table(texts, scored, schema, extra.columns(evidence, scored)))
                    _count(summary, scored, evidence)
                summary.n_rows = plan.n_rows
            finally:
                writer.close()
    finally:
        bar.close()
    summary.n_patterns = cache.n_propagated
    summary.seconds = time.perf_counter() - started
    return summary


def _output_schema(source, passthrough: Sequence[str], names: Sequence[str], *, interval: bool,
                   explain: bool) -> pa.Schema:
    """The output's columns: pass-through, posteriors (and bounds), top findings, P(e), status."""
    interval_names = [f"{name}_{side}" for name in names for side in ("lower", "upper")] if interval else []
    explain_names = ["top_finding_" + name[len("p_"):] for name in names] if explain else []
    clash = [c for c in passthrough if c in set(names) | set(interval_names) | set(explain_names) | set(_OUTPUT_TAIL)]
    if clash:
        raise InputError(f"{source.path}: column {clash[0]!r} would be overwritten by an output column of the same "
                         "name; expected pass-through columns to have other names (rename it, or leave it out of "
                         "--id-column/--keep-columns).")
    return pa.schema(
        [pa.field(c, source.schema.field(c).type if source.schema is not None else pa.string()) for c in passthrough]
        + [pa.field(name, pa.float64()) for name in _probability_order(names, interval)]
        + [pa.field(name, pa.string()) for name in explain_names]
        + [pa.field("evidence_probability", pa.float64()), pa.field("log_evidence_probability", pa.float64()),
           pa.field("status", pa.string())])


@renamed(input="path")
def check_file(path: str | Path, *, model=None, codebook: Codebook | str | Path | None = None,
               id_columns: Sequence[str] | str | None = None, keep_columns: Sequence[str] | str | None = None,
               on_invalid: str = "error", output: str | Path | None = None, read_rows: bool = True,
               chunk_size: int = DEFAULT_CHUNK_SIZE) -> list[str]:
    """Raise the error :func:`score_file` would raise for this file, without scoring or writing anything.

    The same reader and checks as :func:`score_file`, so the messages are the same; the Dask
    engine uses it to explain a failed run in the local engine's words.

    Parameters
    ----------
    path : str or Path
        The survey file (``input=`` is its deprecated spelling).
    read_rows : bool
        Read every row (ragged rows, bad cells, bytes that are not UTF-8); ``False`` checks the
        header only (format, column names, codebook, output types).
    output : str or Path, optional
        The output path, whose format decides which column types can be written.

    Other parameters are as in :func:`score_file`.

    Returns
    -------
    list of str
        The file's column names.

    Examples
    --------
    >>> survey, codebook = example_paths()
    >>> check_file(survey, codebook=codebook)[:3]
    ['SEQN', 'WTINT2YR', 'SDMVPSU']
    """
    plan = _Plan(path, network_of(model), codebook, id_columns=id_columns, keep_columns=keep_columns,
                 on_invalid=on_invalid, unmatched="ignore", output=output)
    if read_rows:
        for _ in plan.chunks(chunk_size):
            pass
    return list(plan.source.columns)


def read_table(path: str | Path) -> pd.DataFrame:
    """A whole table file (CSV, gzip CSV or Parquet, the format found as :func:`score_file` finds it) as a DataFrame.

    For tables read whole, such as a scored table to plot; the file and its header are checked
    as :func:`score_file` checks them, and CSV columns get their types from pandas.

    Examples
    --------
    >>> survey, _ = example_paths()
    >>> read_table(survey).shape
    (20000, 19)
    """
    source = _Source(Path(path))
    check_unique_columns(source.columns, str(path))
    if source.kind == "parquet":
        try:
            return pq.read_table(source.path).to_pandas()
        except (pa.ArrowException, OSError) as error:
            raise InputError(f"{path}: cannot be read as Parquet ({error}); expected an intact Parquet file.") from None
    for _ in source.batches(source.columns, DEFAULT_CHUNK_SIZE):  # ragged rows, said as score_file says them
        pass
    try:
        return pd.read_csv(source.path, compression="gzip" if source.kind == "csv.gz" else None,
                           encoding="utf-8-sig", index_col=False)
    except (UnicodeDecodeError, ValueError, OSError, EOFError) as error:
        raise source._unreadable(error) from None


class _Plan:
    """A survey file opened and matched to the model: its source, code maps, pass-through columns."""

    def __init__(self, input, network: CompiledNetwork, codebook, *, id_columns, keep_columns, on_invalid: str,
                 unmatched: str, output: str | Path | None):
        if on_invalid not in ("error", "flag"):
            raise InputError(f"on_invalid: got {on_invalid!r}; expected \"error\" or \"flag\".")
        self.on_invalid = on_invalid
        input = Path(input)
        self.output_kind = table_format(output) if output is not None else None
        self.source = _Source(input)
        if output is not None:
            check_not_input(output, [input])
        id_columns = [id_columns] if isinstance(id_columns, str) else id_columns
        keep_columns = [keep_columns] if isinstance(keep_columns, str) else keep_columns
        self.maps, self.passthrough, self.unmatched_columns = plan_columns(
            network, self.source.columns, resolve_codebook(codebook), id_columns=id_columns,
            keep_columns=keep_columns, source=str(input), unmatched=unmatched)
        if self.output_kind in ("csv", "csv.gz") and self.source.schema is not None:
            _check_csv_types(self.source, self.passthrough)
        self.n_rows = 0

    def chunks(self, chunk_size: int, bar=None) -> Iterator[tuple[BatchEvidence, list[pa.Array]]]:
        """``(evidence, pass-through arrays)`` for every chunk to score.

        File problems are raised when found (ragged rows, bytes that are not UTF-8 in a
        pass-through column) or after the last row (bad cells with ``on_invalid="error"``, after
        which chunks are read to count every bad cell but no longer delivered).
        """
        source, maps = self.source, self.maps
        wanted = list(dict.fromkeys([*self.passthrough, *(m.column for m in maps)]))
        problems: list[str] = []
        n_bad_cells = 0
        offset = 0
        for chunk in _chunks(source.batches(wanted, chunk_size), chunk_size):
            n = chunk.num_rows
            try:
                evidence = BatchEvidence.from_columns([encode_codes(chunk.column(m.column), m) for m in maps], n)
            except EvidenceError as error:
                raise InputError(f"{source.path}: {error}") from None
            texts = [_text_column(chunk.column(c).combine_chunks(), c, source, offset) if source.kind != "parquet"
                     else chunk.column(c).combine_chunks() for c in self.passthrough]
            n_bad = sum(len(c.bad_rows) for c in evidence.columns)
            if (n_bad and self.on_invalid == "error") or n_bad_cells:
                if n_bad and len(problems) < MAX_LISTED_PROBLEMS:
                    listed, _ = cell_problems(evidence, source=str(source.path),
                                              row_label=lambda r, offset=offset: _row_token(offset + r))
                    problems.extend(listed[:MAX_LISTED_PROBLEMS - len(problems)])
                n_bad_cells += n_bad
            else:
                yield evidence, texts
            offset += n
            if bar is not None:
                bar.update(n)
        self.n_rows = offset
        if n_bad_cells:
            raise invalid_error(_located(problems, source), n_bad_cells)


def _check_csv_types(source: _Source, passthrough: Sequence[str]) -> None:
    """Refuse pass-through columns whose type CSV cannot hold (structs, lists, maps, ...), before anything is read."""
    problems = []
    for column in passthrough:
        kind = source.schema.field(column).type
        try:
            pa_csv.write_csv(pa.table({column: pa.array([], type=kind)}), io.BytesIO())
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
            problems.append(f"{source.path}, column {column!r}: holds {kind} values, which a CSV output cannot hold; "
                            "expected text, numbers, dates or booleans in the columns copied to CSV (write Parquet "
                            "instead, -o NAME.parquet, or leave the column out with --id-column/--keep-columns).")
    if problems:
        raise InputError(problems)


def _progress_bar(enabled: bool, total: int | None):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, unit=" rows", unit_scale=True, file=sys.stderr,
                mininterval=0.5, delay=0.5, desc="scoring", leave=False)


def _writer(path: Path, kind: str, schema: pa.Schema):
    if kind == "parquet":
        return pq.ParquetWriter(path, schema)
    sink = pa.CompressedOutputStream(str(path), "gzip") if kind == "csv.gz" else str(path)
    writer = pa_csv.CSVWriter(sink, schema)
    if kind == "csv.gz":
        return _ClosingWriter(writer, sink)
    return writer


class _ClosingWriter:
    """A CSV writer over a compressed stream: closing it closes the stream too."""

    def __init__(self, writer, sink):
        self.writer, self.sink = writer, sink

    def write_table(self, table: pa.Table) -> None:
        self.writer.write_table(table)

    def close(self) -> None:
        self.writer.close()
        self.sink.close()


def _probability_order(names: Sequence[str], with_interval: bool) -> list[str]:
    """``p_`` columns, each followed by its ``_lower``/``_upper`` bounds when intervals are asked for."""
    if not with_interval:
        return list(names)
    return [c for name in names for c in (name, f"{name}_lower", f"{name}_upper")]


class _ExtraColumns:
    """Optional per-chunk columns: credible bounds (``interval``) and top findings (``explain``)."""

    def __init__(self, network, targets, *, interval, n_draws, rng, explain, model):
        self.network, self.targets, self.interval, self.explain = network, list(targets), interval, explain
        self.tables = None
        if interval is not None:
            if not 0.0 < interval < 1.0:
                raise InputError(f"interval: got {interval!r}; expected a probability between 0 and 1, e.g. 0.9.")
            from .priors import load_spec
            from .uncertainty import draw_tables

            spec = load_spec() if model is None else getattr(model, "spec", None)
            if spec is None:
                raise InputError("interval: needs a Model (its parameters' ranges); got a compiled network without "
                                 "one. Pass model=bayescramp.load_model(...).")
            self.tables = draw_tables(spec, network, n_draws, rng)

    def columns(self, evidence: BatchEvidence, scored) -> dict[str, np.ndarray]:
        """Column name -> values for one chunk (NaN/None on invalid or impossible rows)."""
        blank = scored.invalid | scored.impossible
        found: dict[str, np.ndarray] = {}
        if self.tables is not None:
            from .uncertainty import evidence_intervals

            bounds = evidence_intervals(self.network, evidence, self.targets, self.tables, interval=self.interval,
                                        progress=False)
            for column in bounds.columns:
                values = bounds[column].to_numpy(dtype=float).copy()
                values[blank] = np.nan
                found[column] = values
        if self.explain:
            from .explain import top_findings

            top = top_findings(self.network, evidence, targets=self.targets)
            for column in top.columns:
                values = top[column].to_numpy(dtype=object).copy()
                values[blank] = None
                found[column] = values
        return found


def _output_table(texts: Sequence[pa.Array], scored, schema: pa.Schema, extra: dict[str, np.ndarray]) -> pa.Table:
    arrays = list(texts)
    missing = scored.invalid | scored.impossible
    for k in range(scored.probabilities.shape[1]):
        arrays.append(_float_column(scored.probabilities[:, k], missing))
        name = schema.field(len(arrays) - 1).name
        for side in ("lower", "upper"):
            if f"{name}_{side}" in extra:
                arrays.append(pa.array(extra[f"{name}_{side}"], from_pandas=True))
    for name, values in extra.items():
        if name.startswith("top_finding_"):
            arrays.append(pa.array(values, type=pa.string(), from_pandas=True))
    arrays.append(_float_column(scored.evidence_probability, scored.invalid))
    arrays.append(_float_column(scored.log_evidence_probability, scored.invalid))
    statuses = pa.array(scored.statuses, type=pa.string())
    arrays.append(statuses.take(pa.array(scored.status_codes)))
    return pa.Table.from_arrays(arrays, schema=schema)


def _count(summary: ScoreSummary, scored, evidence: BatchEvidence) -> None:
    n_invalid = int(scored.invalid.sum())
    n_impossible = int(scored.impossible.sum())
    summary.n_invalid += n_invalid
    summary.n_impossible += n_impossible
    summary.n_ok += len(scored.invalid) - n_invalid - n_impossible
    for column, n in invalid_counts(evidence).items():
        summary.invalid_by_column[column] = summary.invalid_by_column.get(column, 0) + n

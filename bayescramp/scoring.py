"""Tables in, posteriors out: batch scoring of a cohort.

A table's columns named like nodes are evidence (state names or yes/no spellings, blank =
no finding), or a codebook says which columns inform which nodes; other columns pass
through untouched. Each distinct evidence pattern is propagated once through the compiled
junction tree (:mod:`bayescramp.engine`); a :class:`PatternCache` keeps the results so a
file scored in chunks propagates each pattern once in all. Files are streamed by
:mod:`bayescramp.survey`, which shares the core here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ._arguments import as_node_list
from ._errors import InputError, one_of
from .codebook import table_encoder
from .engine import CompiledNetwork, propagate_codes
from .evidence import EncodedColumn, missing_text_hint

__all__ = ["default_targets", "target_columns", "check_targets", "encode_frame", "score_frame", "STATUS_OK",
           "STATUS_IMPOSSIBLE", "MAX_LISTED_PROBLEMS", "PatternCache", "ScoredRows", "score_encoded",
           "cell_problems", "invalid_error", "check_column_labels", "invalid_counts"]

STATUS_OK = "ok"
STATUS_IMPOSSIBLE = "impossible_evidence"
#: How many bad cells an error message lists before saying how many more there were.
MAX_LISTED_PROBLEMS = 20
#: Distinct patterns propagated per engine call: small blocks stay in cache and run fastest.
ENGINE_BLOCK = 1024


def default_targets(network: CompiledNetwork, observed: Sequence[str] = ()) -> list[str]:
    """Nodes scored when no targets are given.

    The priors file's ``meta.targets``; without them, the nodes that are neither observable
    (``meta.observable``) nor observed in the data (see :class:`bayescramp.spec.ModelInfo`).
    """
    return network.info.default_targets(observed)


def target_columns(network: CompiledNetwork, targets: Sequence[str]) -> list[tuple[str, str, int]]:
    """Output columns ``(column, node, state index)``.

    ``p_<node>`` for P(positive state) of a two-state node with one (``meta.positive_states``),
    else ``p_<node>__<state>`` per state.
    """
    columns = []
    for node in targets:
        states = network.states[node]
        positive = network.info.positive_state(node)
        if positive is not None:
            columns.append((f"p_{node}", node, states.index(positive)))
        else:
            columns.extend((f"p_{node}__{state}", node, k) for k, state in enumerate(states))
    return columns


def check_targets(network: CompiledNetwork, targets: Sequence[str] | None, observed: Sequence[str]) -> list[str]:
    """Validated target list (default: :func:`default_targets`)."""
    if targets is None:
        return default_targets(network, observed)
    targets = as_node_list(targets, argument="targets", caller="score")
    unknown = [t for t in targets if t not in network.states]
    if unknown:
        raise InputError(f"targets: unknown node {unknown[0]!r}; expected some of {one_of(network.names)}.")
    return list(targets)


def check_column_labels(data: pd.DataFrame, *, caller: str) -> None:
    """Refuse, in one sentence, a table whose column names are not one level of text.

    Examples
    --------
    >>> check_column_labels(pd.DataFrame({0: ["yes"]}), caller="score")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayescramp._errors.InputError: score: column 0 (int) is not named by text; expected text column names ...
    """
    if isinstance(data.columns, pd.MultiIndex):
        raise InputError(f"{caller}: the columns are a MultiIndex of {data.columns.nlevels} levels (the first is "
                         f"{data.columns[0]!r}); expected one level of text column names (flatten them first, e.g. "
                         "data.columns = ['_'.join(map(str, c)) for c in data.columns]).")
    bad = [c for c in data.columns if not isinstance(c, str)]
    if bad:
        raise InputError(f"{caller}: column {bad[0]!r} ({type(bad[0]).__name__}) is not named by text; expected text "
                         "column names (rename the columns, e.g. data.columns = data.columns.map(str)).")


def encode_frame(network: CompiledNetwork, data: pd.DataFrame, *, unmatched: str = "warn"
                 ) -> tuple[list[EncodedColumn], list[str]]:
    """Encode the columns named like nodes; return them and the names of pass-through columns.

    Column names match node names ignoring case and surrounding spaces; columns that look like
    evidence but are not used are reported as ``unmatched`` says
    (:func:`bayescramp.codebook.plan_columns`). A table with no evidence column is scored on
    the priors.

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> encoded, passthrough = encode_frame(compile_spec(load_spec()), pd.DataFrame({"id": [1], "Fatigue": ["y"]}))
    >>> encoded[0].codes.tolist(), passthrough
    ([1], ['id'])
    """
    return table_encoder(unmatched=unmatched, require_evidence=False)(network, data, source="columns")


class PatternCache:
    """Posteriors of evidence patterns already propagated, reused for later rows and chunks.

    A pattern is one row of codes; it is propagated through the engine the first time it
    is seen. ``max_patterns`` bounds memory (the cache starts afresh when it is full).

    Parameters
    ----------
    network : CompiledNetwork
    nodes : sequence of str
        The observed node of each code column.
    alphabets : sequence of ndarray
        ``[n_codes, n_states]`` likelihood vectors per code column.
    targets : sequence of str
        Nodes whose marginals are kept.

    Examples
    --------
    >>> import numpy as np
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> cache = PatternCache(compile_spec(load_spec()), ["leg_cramps"], [np.array([[1.0, 0], [0, 1], [1, 1]])],
    ...                      ["magnesium_deficiency"])
    >>> values, log_pe, impossible = cache.evaluate(np.array([[1], [2], [1]]))
    >>> values.shape, cache.n_propagated
    ((3, 2), 2)
    """

    def __init__(self, network: CompiledNetwork, nodes: Sequence[str], alphabets: Sequence[np.ndarray],
                 targets: Sequence[str], *, max_patterns: int = 200_000):
        self.network = network
        self.nodes = list(nodes)
        self.alphabets = [np.asarray(a, dtype=float) for a in alphabets]
        self.targets = list(targets)
        self.max_patterns = max_patterns
        self.n_propagated = 0
        sizes = [len(a) for a in self.alphabets]
        self._radix = sizes if float(np.prod([float(s) for s in sizes])) < 2.0 ** 62 else None
        self._keys = np.zeros(0, dtype=np.int64)
        n_values = sum(len(network.states[t]) for t in self.targets)
        self._values = np.zeros((0, n_values))
        self._log_pe = np.zeros(0)

    def _propagate(self, patterns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.n_propagated += patterns.shape[0]
        result = propagate_codes(self.network, self.nodes, patterns, self.alphabets, targets=self.targets,
                                 chunk_size=ENGINE_BLOCK, distinct=True)
        values = (np.concatenate([result.marginals[t] for t in self.targets], axis=1) if self.targets
                  else np.zeros((patterns.shape[0], 0)))
        return values, result.log_evidence_probability

    def evaluate(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(values [n_rows, sum of target cards], log P(e) [n_rows], impossible [n_rows])``.

        ``values`` holds each target's marginal, targets side by side in order.
        """
        codes = np.asarray(codes, dtype=np.int64)
        n_rows = codes.shape[0]
        if self._radix is None or not self.nodes or n_rows == 0:
            values, log_pe = self._propagate(codes) if n_rows else (self._values[:0], self._log_pe[:0])
            return values, log_pe, np.isneginf(log_pe)
        key = np.zeros(n_rows, dtype=np.int64)
        for j, size in enumerate(self._radix):
            key = key * size + codes[:, j]
        # hash-based (pandas) rather than sort-based (np.unique): this runs on every chunk
        inverse, unique_keys = pd.factorize(key)
        first = np.empty(len(unique_keys), dtype=np.int64)
        first[inverse[::-1]] = np.arange(n_rows - 1, -1, -1)
        position = np.searchsorted(self._keys, unique_keys)
        known = position < len(self._keys)
        known[known] = self._keys[position[known]] == unique_keys[known]
        values = np.empty((len(unique_keys), self._values.shape[1]))
        log_pe = np.empty(len(unique_keys))
        values[known] = self._values[position[known]]
        log_pe[known] = self._log_pe[position[known]]
        new = ~known
        if new.any():
            new_values, new_log_pe = self._propagate(codes[first[new]])
            values[new] = new_values
            log_pe[new] = new_log_pe
            if len(self._keys) + int(new.sum()) > self.max_patterns:
                self._keys, self._values, self._log_pe = unique_keys, values, log_pe
            else:
                keys = np.concatenate([self._keys, unique_keys[new]])
                order = np.argsort(keys, kind="stable")
                self._keys = keys[order]
                self._values = np.concatenate([self._values, new_values])[order]
                self._log_pe = np.concatenate([self._log_pe, new_log_pe])[order]
        inverse = inverse.reshape(-1)
        row_log_pe = log_pe[inverse]
        return values[inverse], row_log_pe, np.isneginf(row_log_pe)


@dataclass
class ScoredRows:
    """Scores of a block of rows, before they become a DataFrame or an Arrow table.

    Attributes
    ----------
    columns : list of str
        Output names of ``probabilities``' columns (``p_<node>``, ``p_<node>__<state>``).
    probabilities : ndarray ``[n_rows, n_columns]``
        NaN on invalid and impossible rows.
    evidence_probability, log_evidence_probability : ndarray ``[n_rows]``
        NaN on invalid rows; 0 and ``-inf`` on impossible rows.
    status_codes : ndarray of int ``[n_rows]``
        Index into ``statuses``: 0 ``"ok"``, 1 ``"impossible_evidence"``, then one
        ``"invalid: ..."`` reason per distinct bad cell.
    statuses : list of str
    invalid, impossible : ndarray of bool ``[n_rows]``
    """

    columns: list[str]
    probabilities: np.ndarray
    evidence_probability: np.ndarray
    log_evidence_probability: np.ndarray
    status_codes: np.ndarray
    statuses: list[str]
    invalid: np.ndarray
    impossible: np.ndarray

    @property
    def status(self) -> np.ndarray:
        """The status text of every row (object array)."""
        return np.asarray(self.statuses, dtype=object)[self.status_codes]


def cell_problems(encoded: Sequence[EncodedColumn], *, source: str,
                  row_label: Callable[[int], str]) -> tuple[list[str], int]:
    """The first :data:`MAX_LISTED_PROBLEMS` bad cells as sentences (in row order), and how many there are.

    Examples
    --------
    >>> from bayescramp.evidence import encode_column
    >>> encoded = encode_column(["yes", "maybe"], "fatigue", ("no", "yes"))
    >>> cell_problems([encoded], source="s.csv", row_label=lambda r: f"row {r + 2}")[0][0][:45]
    "s.csv, row 3, column 'fatigue': got 'maybe'; "
    """
    n_bad = sum(len(c.bad_rows) for c in encoded)
    candidates = []
    for column in encoded:
        rows = column.bad_rows[:MAX_LISTED_PROBLEMS]
        candidates.extend((int(r), j, column.bad_values[k]) for k, r in enumerate(rows)
                          for j in [encoded.index(column)])
    candidates.sort(key=lambda item: (item[0], item[1]))
    listed = [f"{source}, {row_label(r)}, column {encoded[j].column!r}: got {_show(v)}{missing_text_hint(v)}; "
              f"expected {encoded[j].expected}." for r, j, v in candidates[:MAX_LISTED_PROBLEMS]]
    return listed, n_bad


def invalid_counts(encoded: Sequence[EncodedColumn]) -> dict[str, int]:
    """Rows with a bad cell, per source column: a row bad in two columns counts under both.

    Examples
    --------
    >>> from bayescramp.evidence import encode_column
    >>> invalid_counts([encode_column(["yes", "often", "?"], "fatigue", ("no", "yes"))])
    {'fatigue': 2}
    """
    by_column: dict[str, list[np.ndarray]] = {}
    for column in encoded:
        by_column.setdefault(column.column, []).append(column.bad_rows)
    counts = {column: len(np.unique(np.concatenate(rows))) for column, rows in by_column.items()}
    return {column: n for column, n in counts.items() if n}


def _show(value) -> str:
    if isinstance(value, bytes):
        return f"{value!r} (not UTF-8 text)"
    return repr(value)


def invalid_error(listed: list[str], n_bad: int, *, more_rows: str = "") -> InputError:
    """One :class:`InputError` listing the first problems and how many more there were."""
    more = n_bad - len(listed)
    listed = list(listed)
    if more > 0:
        listed.append(f"... and {more} more invalid cell(s){more_rows}.")
    listed.append("Fix them, map them in a codebook (--codebook FILE), or pass on_invalid=\"flag\" "
                  "(--on-invalid flag) to score the other rows and flag these.")
    return InputError(listed)


def score_encoded(network: CompiledNetwork, encoded: Sequence[EncodedColumn], n_rows: int,
                  targets: Sequence[str], *, cache: PatternCache | None = None) -> ScoredRows:
    """Score rows of encoded evidence; rows with bad cells are flagged, not scored.

    Parameters
    ----------
    network : CompiledNetwork
    encoded : sequence of EncodedColumn
        One per observed node (see :func:`bayescramp.evidence.encode_codes`).
    n_rows : int
    targets : sequence of str
        Validated targets (:func:`check_targets`).
    cache : PatternCache, optional
        Reuse results across calls (same nodes, alphabets and targets).

    Returns
    -------
    ScoredRows

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.evidence import encode_column
    >>> from bayescramp.priors import load_spec
    >>> network = compile_spec(load_spec())
    >>> scored = score_encoded(network, [encode_column(["yes", "?"], "fatigue", ("no", "yes"))], 2, ["anemia"])
    >>> scored.columns, scored.status.tolist()[0]
    (['p_anemia'], 'ok')
    """
    if cache is None:
        cache = PatternCache(network, [c.node for c in encoded], [c.alphabet.vectors for c in encoded], targets)
    codes = (np.column_stack([c.codes for c in encoded]) if encoded else np.zeros((n_rows, 0), dtype=np.int64))
    values, log_pe, impossible = cache.evaluate(codes)
    offsets = np.cumsum([0] + [len(network.states[t]) for t in targets])
    columns, picks = [], []
    for name, node, k in target_columns(network, targets):
        columns.append(name)
        picks.append(offsets[targets.index(node)] + k)
    probabilities = values[:, picks]
    statuses = [STATUS_OK, STATUS_IMPOSSIBLE]
    status_codes = impossible.astype(np.int64)
    invalid = np.zeros(n_rows, dtype=bool)
    reasons: dict[tuple[int, object], int] = {}
    for j, column in enumerate(encoded):
        if not len(column.bad_rows):
            continue
        fresh = ~invalid[column.bad_rows]
        for r, v in zip(column.bad_rows[fresh], column.bad_values[fresh]):
            key = (j, v if not isinstance(v, float) or v == v else "nan")
            if key not in reasons:
                reasons[key] = len(statuses)
                statuses.append(f"invalid: column {column.column!r} got {_show(v)}; expected {column.expected}")
            status_codes[r] = reasons[key]
        invalid[column.bad_rows] = True
    evidence_probability = np.exp(log_pe)
    if invalid.any():
        probabilities[invalid] = np.nan
        evidence_probability[invalid] = np.nan
        log_pe = log_pe.copy()
        log_pe[invalid] = np.nan
        impossible = impossible & ~invalid
    return ScoredRows(columns=columns, probabilities=probabilities, evidence_probability=evidence_probability,
                      log_evidence_probability=log_pe, status_codes=status_codes, statuses=statuses, invalid=invalid,
                      impossible=impossible)


def _row_label_default(position: int) -> str:
    return f"row {position}"


def score_frame(network: CompiledNetwork, data: pd.DataFrame, *, targets: Sequence[str] | None = None,
                encoder: Callable[[CompiledNetwork, pd.DataFrame], tuple[list[EncodedColumn], list[str]]] | None = None,
                on_invalid: str = "error", row_label: Callable[[int], str] | None = None,
                source: str = "data", chunk_size: int = 65536) -> pd.DataFrame:
    """Posteriors for every row of a table, in input order.

    Parameters
    ----------
    network : CompiledNetwork
    data : DataFrame
        Columns named like nodes are evidence; other columns pass through.
    targets : sequence of str, optional
        Nodes to report (default: :func:`default_targets`).
    encoder : callable, optional
        ``encoder(network, data) -> (encoded columns, pass-through column names)``; a
        codebook's encoder (:meth:`bayescramp.codebook.Codebook.encoder`). Default: columns
        named like nodes.
    on_invalid : {"error", "flag"}
        ``error`` raises :class:`InputError` listing the first bad cells; ``flag`` scores the
        other rows and gives bad rows ``status = "invalid: <reason>"`` and no posterior.
    row_label : callable, optional
        Position -> how the row is named in messages (files give the line number).
    source : str
        What the data is called in messages (a file name).
    chunk_size : int
        Rows scored at a time (bounds the engine's working memory).

    Returns
    -------
    DataFrame
        Pass-through columns, ``p_<node>`` per target, ``evidence_probability``,
        ``log_evidence_probability`` and ``status``; the index is ``data``'s index (custom,
        duplicate or MultiIndex alike), so results align with the input by label.

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> frame = pd.DataFrame({"id": [1, 2], "fatigue": ["yes", "sometimes"]})
    >>> scored = score_frame(compile_spec(load_spec()), frame, on_invalid="flag")
    >>> scored["status"].str[:7].tolist()
    ['ok', 'invalid']
    """
    if on_invalid not in ("error", "flag"):
        raise InputError(f"on_invalid: got {on_invalid!r}; expected \"error\" or \"flag\".")
    check_column_labels(data, caller="score")
    row_label = row_label or _row_label_default
    encoded, passthrough = (encoder or encode_frame)(network, data)
    n_rows = len(data)
    listed, n_bad = cell_problems(encoded, source=source, row_label=row_label)
    if n_bad and on_invalid == "error":
        raise invalid_error(listed, n_bad)
    targets = check_targets(network, targets, [c.node for c in encoded])
    output = data[passthrough].reset_index(drop=True) if passthrough else pd.DataFrame(index=range(n_rows))
    names = [name for name, _, _ in target_columns(network, targets)]
    overlap = [c for c in [*names, "evidence_probability", "log_evidence_probability", "status"]
               if c in output.columns]
    if overlap:
        raise InputError(f"columns: input column {overlap[0]!r} would be overwritten by an output column of the "
                         "same name; expected pass-through columns to have other names (rename it).")
    cache = PatternCache(network, [c.node for c in encoded], [c.alphabet.vectors for c in encoded], targets)
    parts = []
    for start in range(0, max(n_rows, 1), max(int(chunk_size), 1)):
        block = [EncodedColumn(c.node, c.column, c.codes[start:start + chunk_size], c.alphabet,
                               c.bad_rows[(c.bad_rows >= start) & (c.bad_rows < start + chunk_size)] - start,
                               c.bad_values[(c.bad_rows >= start) & (c.bad_rows < start + chunk_size)], c.expected)
                 for c in encoded]
        parts.append(score_encoded(network, block, min(chunk_size, n_rows - start), targets, cache=cache))
    columns = {name: np.concatenate([p.probabilities[:, k] for p in parts]) for k, name in enumerate(names)}
    columns["evidence_probability"] = np.concatenate([p.evidence_probability for p in parts])
    columns["log_evidence_probability"] = np.concatenate([p.log_evidence_probability for p in parts])
    columns["status"] = pd.Series(np.concatenate([p.status for p in parts]), dtype=str)
    scored = pd.concat([output, pd.DataFrame(columns)], axis=1)
    scored.index = data.index
    return scored

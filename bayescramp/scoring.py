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
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ._arguments import as_node_list
from ._errors import InputError, one_of
from .codebook import table_encoder
from .engine import CompiledNetwork, propagate_codes
from .evidence import Alphabet, BatchEvidence, EncodedColumn, TableEncoder, missing_text_hint

__all__ = ["default_targets", "target_columns", "check_targets", "encode_frame", "as_evidence", "score_frame",
           "STATUS_OK", "STATUS_IMPOSSIBLE", "MAX_LISTED_PROBLEMS", "PatternCache", "ScoredRows", "score_evidence",
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


def as_evidence(network: CompiledNetwork, evidence: Any, *, encoder: TableEncoder | None = None,
                caller: str = "data") -> BatchEvidence:
    """The one place where what a user passes becomes :class:`~bayescramp.evidence.BatchEvidence`.

    A :class:`~bayescramp.evidence.BatchEvidence` is used as it is; a DataFrame is encoded by
    ``encoder`` (default: columns named like nodes, :func:`encode_frame`) and refused, listing
    its first bad cells, if any cell cannot be read; anything else is one case (a mapping node
    -> finding, a Series or ``(node, finding)`` pairs).

    Raises
    ------
    InputError
        A table with unreadable cells or column labels that are not text.
    EvidenceError
        A case naming an unknown node or state.

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> network = compile_spec(load_spec())
    >>> as_evidence(network, {"leg_cramps": "yes"}).n_rows
    1
    >>> as_evidence(network, pd.DataFrame({"fatigue": ["y", "n"]})).n_rows
    2
    """
    if isinstance(evidence, BatchEvidence):
        return evidence
    if isinstance(evidence, pd.DataFrame):
        check_column_labels(evidence, caller=caller)
        batch = BatchEvidence.from_frame(network, evidence, encoder=encoder or encode_frame)
        listed, n_bad = cell_problems(batch, source="data", row_label=lambda r: f"row {r}")
        if n_bad:
            raise invalid_error(listed, n_bad)
        return batch
    return BatchEvidence.from_case(network.states, evidence)


class PatternCache:
    """Posteriors of evidence patterns already propagated, reused for later rows and chunks.

    A pattern is one row of codes; it is propagated through the engine the first time it
    is seen. ``max_patterns`` bounds memory (the cache starts afresh when it is full).

    Parameters
    ----------
    network : CompiledNetwork
    nodes : sequence of str
        The observed node of each code column.
    alphabets : sequence of Alphabet
        What the codes of each column stand for.
    targets : sequence of str
        Nodes whose marginals are kept.

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.evidence import encode_column
    >>> from bayescramp.priors import load_spec
    >>> evidence = BatchEvidence.from_columns([encode_column(["yes", None, "yes"], "leg_cramps", ("no", "yes"))])
    >>> cache = PatternCache(compile_spec(load_spec()), evidence.nodes, evidence.alphabets, ["magnesium_deficiency"])
    >>> values, log_pe, impossible = cache.evaluate(evidence)
    >>> values.shape, cache.n_propagated
    ((3, 2), 2)
    """

    def __init__(self, network: CompiledNetwork, nodes: Sequence[str], alphabets: Sequence[Alphabet],
                 targets: Sequence[str], *, max_patterns: int = 200_000):
        self.network = network
        self.nodes = tuple(nodes)
        self.alphabets = tuple(alphabets)
        self.targets = list(targets)
        self.max_patterns = max_patterns
        self.n_propagated = 0
        sizes = [len(a.vectors) for a in self.alphabets]
        self._radix = sizes if float(np.prod([float(s) for s in sizes])) < 2.0 ** 62 else None
        self._keys = np.zeros(0, dtype=np.int64)
        n_values = sum(len(network.states[t]) for t in self.targets)
        self._values = np.zeros((0, n_values))
        self._log_pe = np.zeros(0)

    def _propagate(self, patterns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.n_propagated += patterns.shape[0]
        evidence = BatchEvidence(n_rows=patterns.shape[0], nodes=self.nodes, codes=patterns, alphabets=self.alphabets)
        result = propagate_codes(self.network, evidence, targets=self.targets, chunk_size=ENGINE_BLOCK, distinct=True)
        values = (np.concatenate([result.marginals[t] for t in self.targets], axis=1) if self.targets
                  else np.zeros((patterns.shape[0], 0)))
        return values, result.log_evidence_probability

    def evaluate(self, evidence: BatchEvidence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(values [n_rows, sum of target cards], log P(e) [n_rows], impossible [n_rows])``.

        ``values`` holds each target's marginal, targets side by side in order; ``evidence``
        has the cache's nodes and alphabets.
        """
        if evidence.nodes != self.nodes:
            raise InputError(f"PatternCache: evidence on nodes {list(evidence.nodes)}; expected the cache's nodes "
                             f"{list(self.nodes)}, in that order.")
        codes = evidence.codes
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


def cell_problems(evidence: BatchEvidence, *, source: str,
                  row_label: Callable[[int], str]) -> tuple[list[str], int]:
    """The first :data:`MAX_LISTED_PROBLEMS` bad cells as sentences (in row order), and how many there are.

    Examples
    --------
    >>> from bayescramp.evidence import encode_column
    >>> evidence = BatchEvidence.from_columns([encode_column(["yes", "maybe"], "fatigue", ("no", "yes"))])
    >>> cell_problems(evidence, source="s.csv", row_label=lambda r: f"row {r + 2}")[0][0][:45]
    "s.csv, row 3, column 'fatigue': got 'maybe'; "
    """
    encoded = list(evidence.columns)
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


def invalid_counts(evidence: BatchEvidence) -> dict[str, int]:
    """Rows with a bad cell, per source column: a row bad in two columns counts under both.

    Examples
    --------
    >>> from bayescramp.evidence import encode_column
    >>> invalid_counts(BatchEvidence.from_columns([encode_column(["yes", "often", "?"], "fatigue", ("no", "yes"))]))
    {'fatigue': 2}
    """
    by_column: dict[str, list[np.ndarray]] = {}
    for column in evidence.columns:
        by_column.setdefault(column.column, []).append(column.bad_rows)
    counts = {column: len(np.unique(np.concatenate(rows))) for column, rows in by_column.items()}
    return {column: n for column, n in counts.items() if n}


def _show(value) -> str:
    if isinstance(value, bytes):
        return f"{value!r} (not UTF-8 text)"
    return repr(value)


#: How to get past invalid cells when scoring (a fit has no flag option: see ``learning``).
_SCORING_ADVICE = ("Fix them, map them in a codebook (--codebook FILE), or pass on_invalid=\"flag\" "
                  "(--on-invalid flag) to score the other rows and flag these.")


def invalid_error(listed: list[str], n_bad: int, *, more_rows: str = "", advice: str = _SCORING_ADVICE
                  ) -> InputError:
    """One :class:`InputError` listing the first problems, how many more there were, and ``advice``."""
    more = n_bad - len(listed)
    listed = list(listed)
    if more > 0:
        listed.append(f"... and {more} more invalid cell(s){more_rows}.")
    listed.append(advice)
    return InputError(listed)


def score_evidence(network: CompiledNetwork, evidence: BatchEvidence, targets: Sequence[str], *,
                   cache: PatternCache | None = None) -> ScoredRows:
    """Score rows of evidence; rows with unreadable cells are flagged, not scored.

    Parameters
    ----------
    network : CompiledNetwork
    evidence : BatchEvidence
        Its ``columns`` list the unreadable cells (see :meth:`BatchEvidence.from_columns`).
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
    >>> evidence = BatchEvidence.from_columns([encode_column(["yes", "?"], "fatigue", ("no", "yes"))])
    >>> scored = score_evidence(network, evidence, ["anemia"])
    >>> scored.columns, scored.status.tolist()[0]
    (['p_anemia'], 'ok')
    """
    if cache is None:
        cache = PatternCache(network, evidence.nodes, evidence.alphabets, targets)
    values, log_pe, impossible = cache.evaluate(evidence)
    offsets = np.cumsum([0] + [len(network.states[t]) for t in targets])
    columns, picks = [], []
    for name, node, k in target_columns(network, targets):
        columns.append(name)
        picks.append(offsets[targets.index(node)] + k)
    probabilities = values[:, picks]
    statuses = [STATUS_OK, STATUS_IMPOSSIBLE]
    status_codes = impossible.astype(np.int64)
    invalid = _flag_invalid(evidence.columns, status_codes, statuses)
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


def _flag_invalid(encoded: Sequence[EncodedColumn], status_codes: np.ndarray, statuses: list[str]) -> np.ndarray:
    """Give each row with an unreadable cell the status of its first one (in column order); the invalid mask."""
    invalid = np.zeros(len(status_codes), dtype=bool)
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
    return invalid


def _row_label_default(position: int) -> str:
    return f"row {position}"


def score_frame(network: CompiledNetwork, data: pd.DataFrame, *, targets: Sequence[str] | None = None,
                encoder: TableEncoder | None = None,
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
    evidence = BatchEvidence.from_frame(network, data, encoder=encoder or encode_frame)
    listed, n_bad = cell_problems(evidence, source=source, row_label=row_label or _row_label_default)
    if n_bad and on_invalid == "error":
        raise invalid_error(listed, n_bad)
    targets = check_targets(network, targets, evidence.nodes)
    output = _passthrough_output(data, evidence.passthrough, target_columns(network, targets))
    cache = PatternCache(network, evidence.nodes, evidence.alphabets, targets)
    step = max(int(chunk_size), 1)
    parts = [score_evidence(network, evidence.rows(start, start + step), targets, cache=cache)
             for start in range(0, max(evidence.n_rows, 1), step)]
    columns = {name: np.concatenate([p.probabilities[:, k] for p in parts]) for k, name in enumerate(parts[0].columns)}
    columns["evidence_probability"] = np.concatenate([p.evidence_probability for p in parts])
    columns["log_evidence_probability"] = np.concatenate([p.log_evidence_probability for p in parts])
    columns["status"] = pd.Series(np.concatenate([p.status for p in parts]), dtype=str)
    scored = pd.concat([output, pd.DataFrame(columns)], axis=1)
    scored.index = data.index
    return scored


def _passthrough_output(data: pd.DataFrame, passthrough: Sequence[str],
                        columns: Sequence[tuple[str, str, int]]) -> pd.DataFrame:
    """The pass-through columns (positional index), refusing one an output column would overwrite."""
    output = data[list(passthrough)].reset_index(drop=True) if passthrough else pd.DataFrame(index=range(len(data)))
    names = [name for name, _, _ in columns]
    overlap = [c for c in [*names, "evidence_probability", "log_evidence_probability", "status"]
               if c in output.columns]
    if overlap:
        raise InputError(f"columns: input column {overlap[0]!r} would be overwritten by an output column of the "
                         "same name; expected pass-through columns to have other names (rename it).")
    return output

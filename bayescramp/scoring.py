"""Tables in, posteriors out: batch scoring of a cohort.

A table's columns named like nodes are evidence (state names or yes/no spellings, blank =
no finding); every other column passes through untouched. Each distinct evidence pattern
is propagated once through the compiled junction tree (:mod:`bayescramp.engine`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ._errors import InputError, one_of
from .engine import CompiledNetwork, propagate_codes
from .evidence import EncodedColumn, encode_column

__all__ = ["default_targets", "target_columns", "check_targets", "encode_frame", "score_frame", "STATUS_OK", "STATUS_IMPOSSIBLE",
           "MAX_LISTED_PROBLEMS"]

STATUS_OK = "ok"
STATUS_IMPOSSIBLE = "impossible_evidence"
#: How many bad cells an error message lists before saying how many more there were.
MAX_LISTED_PROBLEMS = 20
_POSITIVE_STATES = ("present", "yes")


def default_targets(network: CompiledNetwork, observed: Sequence[str] = ()) -> list[str]:
    """Nodes scored when no targets are given.

    The ``*_deficiency`` nodes when the network has any (the six deficiencies of the default
    model, plus any a user adds); otherwise every node not observed.
    """
    deficiencies = [n for n in network.names if n.endswith("_deficiency")]
    if deficiencies:
        return deficiencies
    return [n for n in network.names if n not in set(observed)]


def target_columns(network: CompiledNetwork, targets: Sequence[str]) -> list[tuple[str, str, int]]:
    """Output columns ``(column, node, state index)``: ``p_<node>`` for P(present/yes),
    or ``p_<node>__<state>`` per state for nodes without such a state."""
    columns = []
    for node in targets:
        states = network.states[node]
        positive = [s for s in _POSITIVE_STATES if s in states]
        if positive and len(states) == 2:
            columns.append((f"p_{node}", node, states.index(positive[0])))
        else:
            columns.extend((f"p_{node}__{state}", node, k) for k, state in enumerate(states))
    return columns


def check_targets(network: CompiledNetwork, targets: Sequence[str] | None, observed: Sequence[str]) -> list[str]:
    """Validated target list (default: :func:`default_targets`)."""
    if targets is None:
        return default_targets(network, observed)
    if isinstance(targets, str):
        targets = [targets]
    unknown = [t for t in targets if t not in network.states]
    if unknown:
        raise InputError(f"targets: unknown node {unknown[0]!r}; expected some of {one_of(network.names)}.")
    return list(targets)


def encode_frame(network: CompiledNetwork, data: pd.DataFrame) -> tuple[list[EncodedColumn], list[str]]:
    """Encode the columns named like nodes; return them and the names of pass-through columns."""
    duplicated = data.columns[data.columns.duplicated()].unique().tolist()
    if duplicated:
        raise InputError(f"columns: {duplicated[0]!r} appears more than once; expected unique column names.")
    encoded = []
    passthrough = []
    for column in data.columns:
        if column in network.states:
            encoded.append(encode_column(data[column].to_numpy(dtype=object), column, network.states[column], column))
        else:
            passthrough.append(column)
    return encoded, passthrough


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
        codebook's encoder. Default: columns named like nodes.
    on_invalid : {"error", "flag"}
        ``error`` raises :class:`InputError` listing the first bad cells; ``flag`` scores the
        other rows and gives bad rows ``status = "invalid: <reason>"`` and no posterior.
    row_label : callable, optional
        Position -> how the row is named in messages (files give the line number).
    source : str
        What the data is called in messages (a file name).

    Returns
    -------
    DataFrame
        Pass-through columns, ``p_<node>`` per target, ``evidence_probability``,
        ``log_evidence_probability`` and ``status``.
    """
    if on_invalid not in ("error", "flag"):
        raise InputError(f"on_invalid: got {on_invalid!r}; expected \"error\" or \"flag\".")
    row_label = row_label or _row_label_default
    encoded, passthrough = (encoder or encode_frame)(network, data)
    n_rows = len(data)
    problems: list[tuple[int, str]] = []
    for column in encoded:
        problems.extend((int(r), f"{source}, {row_label(int(r))}, column {column.column!r}: got {v!r}; expected "
                         f"{column.expected}.") for r, v in zip(column.bad_rows, column.bad_values))
    n_bad_cells = sum(len(c.bad_rows) for c in encoded)
    if n_bad_cells and on_invalid == "error":
        problems.sort()
        listed = [message for _, message in problems[:MAX_LISTED_PROBLEMS]]
        more = n_bad_cells - len(listed)
        if more:
            listed.append(f"... and {more} more invalid cell(s); fix them, map them in a codebook, or pass "
                          "on_invalid=\"flag\" (--on-invalid flag) to score the other rows.")
        raise InputError(listed)
    targets = check_targets(network, targets, [c.node for c in encoded])
    nodes = [c.node for c in encoded]
    codes = np.column_stack([c.codes for c in encoded]) if encoded else np.zeros((n_rows, 0), dtype=np.int64)
    alphabets = [c.alphabet.vectors for c in encoded]
    result = propagate_codes(network, nodes, codes, alphabets, targets=targets, chunk_size=chunk_size)
    output = data[passthrough].reset_index(drop=True) if passthrough else pd.DataFrame(index=range(n_rows))
    status = np.full(n_rows, STATUS_OK, dtype=object)
    status[result.impossible] = STATUS_IMPOSSIBLE
    invalid = np.zeros(n_rows, dtype=bool)
    for column in encoded:
        for r, v in zip(column.bad_rows, column.bad_values):
            if not invalid[r]:
                status[r] = f"invalid: column {column.column!r} got {v!r}; expected {column.expected}"
            invalid[r] = True
    columns = {}
    for name, node, k in target_columns(network, targets):
        values = result.marginals[node][:, k].copy()
        values[invalid] = np.nan
        columns[name] = values
    evidence_probability = np.exp(result.log_evidence_probability)
    log_pe = result.log_evidence_probability.copy()
    evidence_probability[invalid] = np.nan
    log_pe[invalid] = np.nan
    columns["evidence_probability"] = evidence_probability
    columns["log_evidence_probability"] = log_pe
    columns["status"] = status
    scored = pd.DataFrame(columns)
    overlap = [c for c in scored.columns if c in output.columns]
    if overlap:
        raise InputError(f"columns: input column {overlap[0]!r} would be overwritten by an output column of the "
                         "same name; expected pass-through columns to have other names (rename it).")
    return pd.concat([output, scored], axis=1)


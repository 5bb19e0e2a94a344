"""Evidence values to likelihood arrays.

A finding on a node is a likelihood vector over its states: a state is one-hot, a set of
states is an indicator, soft evidence is any non-negative vector, no finding is all ones.
For tables, each column is encoded as small integer codes into a per-node *alphabet* of
likelihood vectors (the node's states one-hot, then "unobserved", then any sets or soft
vectors a codebook defines), so identical rows can be found by comparing integers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._arguments import is_number
from ._errors import EvidenceError, InputError, one_of

__all__ = ["BatchEvidence", "finding_likelihood", "case_evidence", "impossible_evidence_error", "Alphabet",
           "default_alphabet", "EncodedColumn", "encode_column", "distinct_rows",
           "YES_NO_SPELLINGS", "CodeMap", "IntervalMap", "canonical_code", "plain_code_map", "encode_codes",
           "UNOBSERVED", "MISSING_VALUE_TEXTS", "missing_text_hint"]

#: The target meaning "no finding on this node" in code maps and codebooks.
UNOBSERVED = "unobserved"

#: Common spellings accepted for two-state yes/no (and absent/present) nodes without a codebook.
YES_NO_SPELLINGS = {
    "yes": 1, "y": 1, "true": 1, "1": 1, "1.0": 1,
    "no": 0, "n": 0, "false": 0, "0": 0, "0.0": 0,
}


def finding_likelihood(node: str, states: Sequence[str], value: Any) -> np.ndarray:
    """The likelihood vector of one finding.

    Parameters
    ----------
    node : str
        Node name (for error messages).
    states : sequence of str
        The node's states.
    value : str, sequence of str, or mapping
        A state; a set (list/tuple/set or 1-D array) of states; or a likelihood
        ``{state: weight}`` with weights any non-negative numbers (Python, numpy or Decimal;
        states left out weigh 0).

    Examples
    --------
    >>> finding_likelihood("diuretic", ["none", "thiazide", "loop"], ["thiazide", "loop"])
    array([0., 1., 1.])
    """
    vector = np.zeros(len(states))
    if isinstance(value, str):
        if value not in states:
            raise EvidenceError(f"evidence {node}={value!r}: unknown state; expected one of {one_of(states)}.")
        vector[states.index(value)] = 1.0
        return vector
    if isinstance(value, Mapping):
        for state, weight in value.items():
            if state not in states:
                raise EvidenceError(f"evidence {node}: unknown state {state!r} in the likelihood; expected states "
                                    f"among {one_of(states)}.")
            if not is_number(weight) or not float(weight) >= 0 or not np.isfinite(float(weight)):
                raise EvidenceError(f"evidence {node}: likelihood of {state!r} is {weight!r}; expected a finite "
                                    "non-negative number.")
            vector[states.index(state)] = float(weight)
        if not vector.any():
            raise EvidenceError(f"evidence {node}: the likelihood {dict(value)!r} is zero for every state; expected "
                                "at least one positive weight.")
        return vector
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if isinstance(value, (list, tuple, set, frozenset)):
        if not value:
            raise EvidenceError(f"evidence {node}: got an empty set of states; expected one or more of "
                                f"{one_of(states)}.")
        for state in value:
            if state not in states:
                raise EvidenceError(f"evidence {node}: unknown state {state!r} in the set; expected states among "
                                    f"{one_of(states)}.")
            vector[states.index(state)] = 1.0
        return vector
    raise EvidenceError(f"evidence {node}={value!r}: got a {type(value).__name__}; expected a state name, a list "
                        "of states, or a {state: likelihood} mapping.")


def _is_blank(value: Any) -> bool:
    """A scalar finding that means "no finding": None, a null (NaN, pd.NA) or blank text."""
    if isinstance(value, (str, bytes, float, np.floating)) or value is None or value is pd.NA or value is pd.NaT:
        return canonical_code(value) == ""
    return False


def _same_finding(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def case_evidence(evidence: Any, *, where: str = "evidence") -> dict[str, Any]:
    """One case's evidence as a dict node -> finding; blank findings become ``None``.

    Accepts a mapping, a pandas Series (one row of a table) or a sequence of
    ``(node, finding)`` pairs. A node given twice with different findings is refused, never
    resolved by taking the last one. A finding that is blank (None, NaN, pd.NA or blank
    text, as for table cells) means no finding.

    Raises
    ------
    EvidenceError
        A node given twice with different findings, or evidence of another kind.

    Examples
    --------
    >>> case_evidence([("leg_cramps", "yes"), ("fatigue", float("nan"))])
    {'leg_cramps': 'yes', 'fatigue': None}
    >>> case_evidence([("leg_cramps", "yes"), ("leg_cramps", "no")])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayescramp._errors.EvidenceError: evidence: node 'leg_cramps' is given twice, as 'yes' and as 'no'; ...
    """
    if evidence is None:
        return {}
    if isinstance(evidence, pd.DataFrame):
        raise EvidenceError(f"{where}: got a DataFrame; expected one case (a mapping node -> finding); tables are "
                            "scored with Model.score, explain, most_probable or sensitivity.")
    if isinstance(evidence, Mapping):
        pairs = list(evidence.items())
    elif isinstance(evidence, pd.Series):
        pairs = list(evidence.items())
    elif isinstance(evidence, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in evidence):
        pairs = [tuple(p) for p in evidence]
    else:
        raise EvidenceError(f"{where}: got {type(evidence).__name__} {_brief(evidence)}; expected a mapping node -> "
                            "finding (e.g. {\"leg_cramps\": \"yes\"}), a table row (pandas Series) or "
                            "(node, finding) pairs.")
    result: dict[str, Any] = {}
    for node, value in pairs:
        if not isinstance(node, str):
            raise EvidenceError(f"{where}: got node name {node!r} ({type(node).__name__}); expected node names as "
                                "text.")
        value = None if _is_blank(value) else value
        if node in result and not _same_finding(result[node], value):
            raise EvidenceError(f"{where}: node {node!r} is given twice, as {result[node]!r} and as {value!r}; "
                                "expected one finding per node (for \"one of these states\" give a set, e.g. "
                                f"{[v for v in (result[node], value) if isinstance(v, str)]!r}).")
        result[node] = value
    return result


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def impossible_evidence_error(evidence: Mapping[str, Any], *, where: str = "evidence") -> EvidenceError:
    """The one refusal of evidence that has probability zero under the model (naming the findings).

    Examples
    --------
    >>> str(impossible_evidence_error({"leg_cramps": "no", "cramp_timing": "night"}))[:52]
    "evidence leg_cramps='no', cramp_timing='night': has "
    """
    findings = ", ".join(f"{k}={v!r}" for k, v in evidence.items() if v is not None)
    return EvidenceError(f"{where} {findings}: has probability zero under the model (impossible evidence); expected "
                         "findings the model allows together (check for a contradiction such as leg_cramps=no with "
                         "cramp_timing=night).")


@dataclass(frozen=True)
class Alphabet:
    """The likelihood vectors a node's codes stand for: ``vectors[code]`` is ``[n_states]``.

    ``labels[code]`` says what the code means (a state name, ``"unobserved"``, a set).
    """

    vectors: np.ndarray
    labels: tuple[str, ...]

    @property
    def unobserved(self) -> int:
        """The code meaning "no finding" (all ones)."""
        return self.labels.index("unobserved")


def default_alphabet(states: Sequence[str]) -> Alphabet:
    """States one-hot (codes ``0..k-1``) and then ``unobserved`` (code ``k``)."""
    k = len(states)
    return Alphabet(vectors=np.vstack([np.eye(k), np.ones((1, k))]), labels=tuple(states) + ("unobserved",))


@dataclass
class EncodedColumn:
    """A table column as codes into its node's alphabet, with the rows that could not be read.

    ``bad_rows`` are positions (0-based) whose value is not understood; their code is the
    unobserved code and ``bad_values[i]`` holds the raw value of ``bad_rows[i]``.
    """

    node: str
    column: str
    codes: np.ndarray
    alphabet: Alphabet
    bad_rows: np.ndarray
    bad_values: np.ndarray
    expected: str


@dataclass(frozen=True)
class IntervalMap:
    """Numbers -> alphabet index by non-overlapping half-open intervals.

    ``breaks[n_breaks]`` are the sorted interval bounds; ``bins[n_breaks + 1]`` is the
    alphabet index of each stretch between consecutive breaks (``bins[0]`` below the first
    break, ``bins[-1]`` from the last one up), ``-1`` where no interval covers it (a gap).
    ``closed = "left"`` means ``[low, high)``, ``"right"`` means ``(low, high]``.

    Examples
    --------
    >>> ages = IntervalMap(breaks=np.array([18.0, 40.0, 65.0]), bins=np.array([-1, 0, 1, 2]))
    >>> ages.indices(np.array([17.0, 18.0, 39.9, 40.0, 80.0])).tolist()
    [-1, 0, 0, 1, 2]
    """

    breaks: np.ndarray
    bins: np.ndarray
    closed: str = "left"

    def indices(self, numbers: np.ndarray) -> np.ndarray:
        """The alphabet index of each (finite) number, ``-1`` for a number in no interval."""
        side = "right" if self.closed == "left" else "left"
        return self.bins[np.searchsorted(self.breaks, numbers, side=side)]


@dataclass(frozen=True)
class CodeMap:
    """How one source column informs one node: canonical code text -> alphabet index.

    Blank cells and nulls always mean "no finding". Codes are matched by
    :func:`canonical_code` (trimmed, case-insensitive, numbers by value), so a CSV cell
    ``"1"``, a Parquet float ``1.0`` and the codebook key ``"1"`` are the same code.

    Attributes
    ----------
    node, column : str
        The node informed and the source column.
    alphabet : Alphabet
        Likelihood vectors: the node's states one-hot, then unobserved, then any sets or
        soft findings the codes stand for.
    lookup : dict
        Canonical code -> index into ``alphabet``.
    expected : str
        What the column may hold, for error messages.
    intervals : IntervalMap, optional
        For a numeric column: numbers that are not codes in ``lookup`` (which take
        precedence) are mapped by interval; numbers in no interval and text that is not a
        code are invalid; NaN is no finding.
    """

    node: str
    column: str
    alphabet: Alphabet
    lookup: Mapping[str, int]
    expected: str
    intervals: IntervalMap | None = None


def canonical_code(value: Any) -> str | None:
    """The text a cell is matched by: trimmed, lower case, numbers by value; ``None`` if unreadable.

    This is the one place that decides what "no finding" is: an **empty** cell, i.e. blank or
    whitespace-only text, or a null (None, NaN, pd.NA, NaT), gives ``""``. Text is never read
    as a missing value: ``"NaN"``, ``"NA"``, ``"null"``, ``"None"`` are codes like any other
    (invalid unless a codebook maps them, e.g. ``unobserved = ["NA"]``), with or without a
    codebook, from a DataFrame or a file. Bytes that are not UTF-8 give ``None``.
    Numbers of every kind (Python, numpy, ``Decimal`` as Parquet decimal columns hold) match
    by value: ``Decimal("1.0")``, ``1``, ``"01"`` and ``1.0`` are the same code.

    Examples
    --------
    >>> [canonical_code(v) for v in [" Yes", 1.0, "01", b"2", float("nan"), True, 1.5, Decimal("2.50")]]
    ['yes', '1', '1', '2', '', 'true', '1.5', '2.5']
    >>> [canonical_code(v) for v in [None, "  ", "NaN", "NA"]]
    ['', '', 'nan', 'na']
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, Decimal):
        return _decimal_code(value)
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(value, bool) or isinstance(value, np.bool_):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return ""
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    if not isinstance(value, str):
        return None
    return _text_code(value)


def _decimal_code(value: Decimal) -> str:
    """A ``Decimal`` cell by value (NaN is blank)."""
    if value.is_nan():
        return ""
    if not value.is_finite():
        return "inf" if value > 0 else "-inf"
    return str(int(value)) if value == value.to_integral_value() else repr(float(value))


def _text_code(value: str) -> str:
    """Text trimmed and case-folded; text that reads as a finite number by that number's value."""
    text = value.strip().casefold()
    if text and (text[0].isdigit() or text[0] in "+-."):
        try:
            number = float(text)
        except ValueError:
            return text
        if np.isfinite(number):
            return str(int(number)) if number.is_integer() else repr(number)
    return text


#: Texts that other tools write for a missing value; they are *not* blank here (see :func:`canonical_code`).
MISSING_VALUE_TEXTS = frozenset({"nan", "na", "n/a", "<na>", "nat", "null", "none", "#n/a", "missing"})


def missing_text_hint(value: Any) -> str:
    """A clause for messages when a bad cell is text that spells a missing value, else ``""``.

    Examples
    --------
    >>> missing_text_hint("NA")[:55]
    ' (text, not an empty cell: only an empty cell means no '
    >>> missing_text_hint("yes")
    ''
    """
    if isinstance(value, (str, bytes)) and canonical_code(value) in MISSING_VALUE_TEXTS:
        shown = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        return (" (text, not an empty cell: only an empty cell means no finding; leave it blank or map it in a "
                f"codebook, e.g. unobserved = [{shown.strip()!r}])")
    return ""


def _plain_yes_no(states: Sequence[str]) -> bool:
    return len(states) == 2 and tuple(states) in (("no", "yes"), ("absent", "present"))


def plain_code_map(node: str, states: Sequence[str], column: str | None = None) -> CodeMap:
    """The code map of a column named like its node: state names (any case) or yes/no spellings.

    Examples
    --------
    >>> code_map = plain_code_map("leg_cramps", ("no", "yes"))
    >>> code_map.lookup["y"], code_map.lookup["no"]
    (1, 0)
    """
    alphabet = default_alphabet(states)
    lookup = {canonical_code(s): i for i, s in enumerate(states)}
    expected = one_of(states)
    if _plain_yes_no(states):
        lookup.update({canonical_code(k): v for k, v in YES_NO_SPELLINGS.items()})
        expected += ", or yes/no, y/n, true/false, 1/0"
    return CodeMap(node=node, column=column or node, alphabet=alphabet, lookup=lookup,
                   expected=f"{expected} (any case), or blank for no finding")


def _as_arrow(values) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if isinstance(values, pa.Array):
        return values
    if not hasattr(values, "dtype"):
        values = np.asarray(values, dtype=object)
    try:
        array = pa.array(values, from_pandas=True)
        # Arrow-backed pandas columns come back chunked
        return _as_arrow(array) if isinstance(array, pa.ChunkedArray) else array
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # mixed cells (numbers and text): match each by its text; None and NaN stay null
        cells = [None if (v is None or (isinstance(v, float) and np.isnan(v))) else
                 (v if isinstance(v, (str, bytes)) else _text_of(v)) for v in np.asarray(values, dtype=object)]
        return pa.array(cells, type=pa.string() if not any(isinstance(v, bytes) for v in cells) else None)


def _text_of(value: Any) -> str:
    code = canonical_code(value)
    return str(value) if code is None else code


def _shown(value: Any) -> Any:
    """A bad cell as shown in messages: text as text, undecodable bytes as bytes."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


def encode_codes(values, code_map: CodeMap) -> EncodedColumn:
    """Encode a column's cells as codes into ``code_map.alphabet`` (no Python loop over rows).

    The column is dictionary-encoded with Arrow, each distinct value is looked up once,
    and the codes are gathered with numpy.

    Parameters
    ----------
    values : array-like, pandas Series, or pyarrow Array / ChunkedArray
        The column's cells.
    code_map : CodeMap
        What the codes mean.

    Returns
    -------
    EncodedColumn
        Codes ``[n_rows]`` and the rows whose values are not in the map.

    Examples
    --------
    >>> encoded = encode_codes(["yes", "", "maybe"], plain_code_map("leg_cramps", ("no", "yes")))
    >>> encoded.codes.tolist(), encoded.bad_rows.tolist(), encoded.bad_values.tolist()
    ([1, 2, 2], [2], ['maybe'])
    """
    array = _as_arrow(values)
    unobserved = code_map.alphabet.unobserved
    if pa.types.is_nested(array.type):
        raise_type = f"column {code_map.column!r} holds {array.type} values; expected text or numbers."
        raise EvidenceError(raise_type)
    encoded = array if pa.types.is_dictionary(array.type) else pc.dictionary_encode(array)
    dictionary = encoded.dictionary
    table = np.full(len(dictionary) + 1, unobserved, dtype=np.int64)  # the last slot: null cells
    bad_unique = np.zeros(len(dictionary) + 1, dtype=bool)
    if code_map.intervals is None:
        _look_up_codes(dictionary.to_pylist(), code_map.lookup, table, bad_unique)
    else:
        _look_up_numbers(dictionary, code_map, table, bad_unique)
    indices = encoded.indices
    if indices.null_count:
        indices = indices.fill_null(len(dictionary))
    positions = indices.to_numpy(zero_copy_only=False)
    codes = table[positions]
    if bad_unique.any():
        bad_rows = np.flatnonzero(bad_unique[positions])
        bad_keys = np.flatnonzero(bad_unique)
        shown = np.empty(len(bad_unique), dtype=object)
        shown[bad_keys] = [_shown(v) for v in dictionary.take(pa.array(bad_keys)).to_pylist()]
        bad_values = shown[positions[bad_rows]]
    else:
        bad_rows, bad_values = np.zeros(0, dtype=np.int64), np.empty(0, dtype=object)
    return EncodedColumn(node=code_map.node, column=code_map.column, codes=codes, alphabet=code_map.alphabet,
                         bad_rows=bad_rows, bad_values=bad_values, expected=code_map.expected)


def _look_up_codes(dictionary: list, lookup: Mapping[str, int], table: np.ndarray, bad_unique: np.ndarray) -> None:
    """Fill ``table``/``bad_unique`` for each distinct cell value by its canonical code."""
    for k, raw in enumerate(dictionary):
        code = canonical_code(raw)
        if code is not None and code in lookup:
            table[k] = lookup[code]
        elif code != "":
            bad_unique[k] = True


# a number as text, surrounding ASCII blanks allowed; anything else takes the per-value path
_NUMBER_PATTERN = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"


def _look_up_numbers(dictionary: pa.Array, code_map: CodeMap, table: np.ndarray, bad_unique: np.ndarray) -> None:
    """Fill ``table``/``bad_unique`` for a numeric column: explicit codes first, then intervals.

    Vectorised over the distinct values: numbers (numeric types, or text that reads as a
    number) are matched by value against the numeric codes and then by ``searchsorted``
    over the interval bounds. Only distinct values that are neither numbers nor null (text
    codes such as ``"."``, and invalid text) are looked at one by one.
    """
    n_values = len(dictionary)
    numbers = np.full(n_values, np.nan)
    decided = np.zeros(n_values, dtype=bool)  # blank, or matched by a text code, or invalid text
    kind = dictionary.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        numbers = pc.cast(dictionary, pa.float64()).to_numpy(zero_copy_only=False).astype(float)
        decided = np.isnan(numbers)  # NaN: no finding
    else:
        if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind) \
                or pa.types.is_large_binary(kind):
            numeric = pc.fill_null(pc.match_substring_regex(dictionary, _NUMBER_PATTERN), False)
            numeric = numeric.to_numpy(zero_copy_only=False)
            text = pc.cast(pc.filter(dictionary, pa.array(numeric)), pa.string())
            numbers[numeric] = pc.cast(pc.utf8_trim_whitespace(text), pa.float64()).to_numpy(zero_copy_only=False)
        else:
            numeric = np.zeros(n_values, dtype=bool)
        others = np.flatnonzero(~numeric)
        for k, raw in zip(others, dictionary.take(pa.array(others, type=pa.int64())).to_pylist()):
            code = canonical_code(raw)
            if code == "":  # blank; text such as "NaN" is a code like any other (canonical_code)
                decided[k] = True
            elif code is not None and code in code_map.lookup:
                table[k] = code_map.lookup[code]
                decided[k] = True
            else:
                number = _number_of(code)
                if number is None:
                    bad_unique[k] = decided[k] = True
                else:
                    numbers[k] = number
    pending = np.flatnonzero(~decided)
    values = numbers[pending]
    code_values, code_indices = _numeric_codes(code_map.lookup)
    if len(code_values):
        at = np.minimum(np.searchsorted(code_values, values), len(code_values) - 1)
        is_code = code_values[at] == values
        table[pending[is_code]] = code_indices[at[is_code]]
        pending, values = pending[~is_code], values[~is_code]
    finite = np.isfinite(values)
    found = np.full(len(values), -1, dtype=np.int64)
    found[finite] = code_map.intervals.indices(values[finite])
    table[pending[found >= 0]] = found[found >= 0]
    bad_unique[pending[found < 0]] = True


def _number_of(code: str | None) -> float | None:
    """The number a canonical code stands for, or ``None`` if it is not a number."""
    if code is None or not code or not (code[0].isdigit() or code[0] in "+-."):
        return None
    try:
        return float(code)
    except ValueError:
        return None


def _numeric_codes(lookup: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """The codes of ``lookup`` that are numbers, sorted by value, and their alphabet indices."""
    pairs = sorted((number, index) for code, index in lookup.items()
                   if (number := _number_of(code)) is not None)
    return (np.array([p[0] for p in pairs], dtype=float), np.array([p[1] for p in pairs], dtype=np.int64))


def encode_column(values, node: str, states: Sequence[str], column: str | None = None) -> EncodedColumn:
    """Encode raw cell values (state names or yes/no spellings; blank = unobserved) as codes.

    Parameters
    ----------
    values : array-like
        The column's cells. ``None``, NaN and blank strings mean "no finding"; the text
        ``"NaN"`` or ``"NA"`` does not (see :func:`canonical_code`).
    node : str
        The node the column informs.
    states : sequence of str
        The node's states.
    column : str, optional
        Column name for messages (defaults to ``node``).

    Examples
    --------
    >>> encoded = encode_column(["yes", "", "No", None], "leg_cramps", ("no", "yes"))
    >>> encoded.codes.tolist()
    [1, 2, 0, 2]
    """
    return encode_codes(values, plain_code_map(node, states, column))


def distinct_rows(codes: np.ndarray, sizes: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of an integer code table and, per input row, the index of its distinct row.

    ``sizes[j]`` bounds column ``j``'s codes (default: its maximum + 1). Rows become one integer
    key (mixed radix) when that fits in int64, raw bytes otherwise: both far faster than
    ``np.unique(axis=0)``.

    Examples
    --------
    >>> patterns, inverse = distinct_rows(np.array([[1, 0], [0, 2], [1, 0]]))
    >>> patterns.tolist(), inverse.tolist()
    ([[0, 2], [1, 0]], [1, 0, 1])
    """
    codes = np.asarray(codes, dtype=np.int64)
    n_rows, n_columns = codes.shape
    if n_columns == 0:
        return np.zeros((min(1, n_rows), 0), dtype=np.int64), np.zeros(n_rows, dtype=np.int64)
    if n_rows == 0:
        return codes, np.zeros(0, dtype=np.int64)
    if sizes is None:
        sizes = (codes.max(axis=0) + 1).tolist()
    if float(np.prod([float(s) for s in sizes])) < 2.0 ** 62:
        key = np.zeros(n_rows, dtype=np.int64)
        for j, size in enumerate(sizes):
            key = key * int(size) + codes[:, j]
    else:
        small = np.ascontiguousarray(codes.astype(np.uint8 if max(sizes) <= 256 else np.int64))
        key = small.view(np.dtype((np.void, small.dtype.itemsize * n_columns))).reshape(-1)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return codes[first], inverse.reshape(-1)


def _describe_value(value: Any) -> str:
    """A finding as the label of its code: the state, ``a|b`` for a set, ``a:0.2,b:1`` for a likelihood."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return ",".join(f"{state}:{float(weight):g}" for state, weight in value.items())
    return "|".join(str(v) for v in value)


def _unobserved_code(alphabet: Alphabet) -> int | None:
    """The first all-ones ("no finding") code of an alphabet, ``None`` if it has none."""
    ones = np.flatnonzero((np.asarray(alphabet.vectors) == 1.0).all(axis=1))
    return int(ones[0]) if len(ones) else None


#: ``encoder(network, data) -> (encoded columns, pass-through column names)``: how a table becomes evidence.
TableEncoder = Callable[[Any, Any], "tuple[list[EncodedColumn], list[str]]"]


@dataclass(frozen=True)
class BatchEvidence:
    """Evidence for a batch of rows, the one shape every analysis and the engine take.

    Row ``r``'s likelihood on ``nodes[j]`` is ``alphabets[j].vectors[codes[r, j]]``; a node
    not in ``nodes`` has no finding on any row. One case is a batch of one row. Build it with
    one constructor per input form: :meth:`from_case` (one person's findings),
    :meth:`from_likelihoods` (arrays ``[n_rows, n_states]``), :meth:`from_columns` (encoded
    table columns) or :meth:`from_frame` (a DataFrame and its encoder). The row count is
    checked once, by the constructor: a column with another row count is an
    :class:`~bayescramp._errors.InputError` naming the node and both counts.

    Attributes
    ----------
    n_rows : int
        Number of evidence rows.
    nodes : tuple of str
        The node each code column informs.
    codes : ndarray of int, ``[n_rows, n_columns]``
    alphabets : tuple of Alphabet
        ``alphabets[j].vectors`` is ``[n_codes, n_states]``.
    index : pandas Index or None
        Row labels of a table (``None``: positions).
    case : dict or None
        One case's findings (node -> finding, blanks dropped) when built by :meth:`from_case`,
        so that impossible evidence is refused in the case's own words; ``None`` for tables.
    columns : tuple of EncodedColumn
        The table columns the codes came from, with their unreadable cells (for messages and
        ``status``); empty unless built from columns or a frame.
    passthrough : tuple of str
        A frame's columns that are not evidence (returned untouched by scoring).

    Examples
    --------
    >>> evidence = BatchEvidence.from_case({"leg_cramps": ("no", "yes")}, {"leg_cramps": "yes"})
    >>> evidence.n_rows, evidence.nodes, evidence.likelihood()["leg_cramps"].tolist()
    (1, ('leg_cramps',), [[0.0, 1.0]])
    """

    n_rows: int
    nodes: tuple[str, ...]
    codes: np.ndarray
    alphabets: tuple[Alphabet, ...]
    index: Any = None
    case: dict[str, Any] | None = None
    columns: tuple[EncodedColumn, ...] = ()
    passthrough: tuple[str, ...] = ()

    def __post_init__(self):
        if self.codes.shape != (self.n_rows, len(self.nodes)) or len(self.alphabets) != len(self.nodes):
            raise InputError(f"evidence: codes of shape {self.codes.shape} with {len(self.alphabets)} alphabets; "
                             f"expected [{self.n_rows}, {len(self.nodes)}], one code column and one alphabet per "
                             f"node ({', '.join(self.nodes) or 'none'}).")

    @classmethod
    def from_case(cls, states: Mapping[str, Sequence[str]], evidence: Any, *,
                  where: str = "evidence") -> BatchEvidence:
        """One case's evidence as a batch of one row; blank findings are no finding.

        Parameters
        ----------
        states : mapping
            Node -> its states (``network.states``).
        evidence : mapping, pandas Series or (node, finding) pairs
            Anything :func:`case_evidence` accepts: node -> state, set of states, or
            ``{state: likelihood}``.
        where : str
            How the evidence is named in messages.

        Raises
        ------
        EvidenceError
            An unknown node or state, or a node given twice with different findings.

        Examples
        --------
        >>> evidence = BatchEvidence.from_case({"a": ("no", "yes"), "b": ("x", "y")}, {"a": ["no", "yes"], "b": None})
        >>> evidence.nodes, evidence.alphabets[0].labels
        (('a',), ('no|yes', 'unobserved'))
        """
        findings = case_evidence(evidence, where=where)
        nodes, alphabets = [], []
        for node, value in findings.items():
            if node not in states:
                raise EvidenceError(f"{where} names unknown node {node!r}; expected one of {one_of(states)}.")
            if value is None:
                continue
            vector = finding_likelihood(node, list(states[node]), value)
            nodes.append(node)
            alphabets.append(Alphabet(vectors=np.vstack([vector, np.ones_like(vector)]),
                                      labels=(_describe_value(value), UNOBSERVED)))
        return cls(n_rows=1, nodes=tuple(nodes), codes=np.zeros((1, len(nodes)), dtype=np.int64),
                   alphabets=tuple(alphabets), case={k: v for k, v in findings.items() if v is not None})

    @classmethod
    def from_likelihoods(cls, likelihood: Mapping[str, Any], *, n_rows: int | None = None,
                         index: Any = None) -> BatchEvidence:
        """Evidence from likelihood arrays: node -> ``[n_rows, n_states]`` non-negative numbers.

        Parameters
        ----------
        likelihood : mapping
            Node -> ``[n_rows, n_states]``; nodes left out have no finding.
        n_rows : int, optional
            Needed only when ``likelihood`` is empty; otherwise it must agree with the arrays.
        index : pandas Index, optional
            Row labels.

        Raises
        ------
        InputError
            An array that is not 2-D, or arrays (or ``n_rows``) with different row counts.

        Examples
        --------
        >>> import numpy as np
        >>> BatchEvidence.from_likelihoods({"a": np.ones((2, 2)), "b": np.ones((3, 2))})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        bayescramp._errors.InputError: evidence: likelihood of node 'b' has 3 rows; expected 2 rows, as ...
        """
        arrays = {node: np.asarray(values, dtype=float) for node, values in likelihood.items()}
        for node, values in arrays.items():
            if values.ndim != 2:
                raise InputError(f"evidence: likelihood of node {node!r} has shape {values.shape}; expected a 2-D "
                                 "array [n_rows, n_states].")
        n_rows = _one_row_count({node: len(values) for node, values in arrays.items()}, n_rows, "likelihood of")
        codes = np.repeat(np.arange(n_rows, dtype=np.int64)[:, None], len(arrays), axis=1)
        alphabets = tuple(Alphabet(vectors=values, labels=()) for values in arrays.values())
        return cls(n_rows=n_rows, nodes=tuple(arrays), codes=codes, alphabets=alphabets, index=index)

    @classmethod
    def from_columns(cls, columns: Sequence[EncodedColumn], n_rows: int | None = None, *, index: Any = None,
                     passthrough: Sequence[str] = ()) -> BatchEvidence:
        """Evidence from encoded table columns (:func:`encode_codes`, a codebook's encoder).

        Cells that could not be read carry the "no finding" code; they stay listed in
        ``columns[j].bad_rows`` (see :attr:`invalid`).

        Raises
        ------
        InputError
            Columns (or ``n_rows``) with different row counts.

        Examples
        --------
        >>> evidence = BatchEvidence.from_columns([encode_column(["yes", None], "fatigue", ("no", "yes"))])
        >>> evidence.n_rows, evidence.codes.tolist()
        (2, [[1], [2]])
        """
        columns = tuple(columns)
        n_rows = _one_row_count({c.node: len(c.codes) for c in columns}, n_rows, "column for")
        codes = (np.column_stack([np.asarray(c.codes) for c in columns]).astype(np.int64, copy=False) if columns
                 else np.zeros((n_rows, 0), dtype=np.int64))
        return cls(n_rows=n_rows, nodes=tuple(c.node for c in columns), codes=codes,
                   alphabets=tuple(c.alphabet for c in columns), index=index, columns=columns,
                   passthrough=tuple(passthrough))

    @classmethod
    def from_frame(cls, network: Any, data: Any, *, encoder: TableEncoder) -> BatchEvidence:
        """Evidence from a DataFrame: ``encoder`` picks and encodes its evidence columns.

        Parameters
        ----------
        network : CompiledNetwork
            The network whose nodes the columns inform.
        data : DataFrame
        encoder : callable
            ``encoder(network, data) -> (encoded columns, pass-through column names)``: a
            codebook's encoder, or :func:`bayescramp.scoring.encode_frame` (columns named like
            nodes).

        Examples
        --------
        >>> import pandas as pd
        >>> from bayescramp.engine import compile_spec
        >>> from bayescramp.priors import load_spec
        >>> from bayescramp.scoring import encode_frame
        >>> frame = pd.DataFrame({"id": [7, 8], "leg_cramps": ["yes", None]}, index=["a", "b"])
        >>> evidence = BatchEvidence.from_frame(compile_spec(load_spec()), frame, encoder=encode_frame)
        >>> evidence.codes.tolist(), list(evidence.index), evidence.passthrough
        ([[1], [2]], ['a', 'b'], ('id',))
        """
        encoded, passthrough = encoder(network, data)
        return cls.from_columns(encoded, len(data), index=data.index, passthrough=passthrough)

    @property
    def labels(self) -> Any:
        """Row labels: ``index``, or positions ``0..n_rows-1`` when there is none."""
        return pd.RangeIndex(self.n_rows) if self.index is None else self.index

    @property
    def invalid(self) -> np.ndarray:
        """Rows with a cell that could not be read (``[n_rows]`` bool)."""
        invalid = np.zeros(self.n_rows, dtype=bool)
        for column in self.columns:
            invalid[column.bad_rows] = True
        return invalid

    def likelihood(self) -> dict[str, np.ndarray]:
        """Node -> likelihood ``[n_rows, n_states]`` of every observed node."""
        return {node: np.asarray(alphabet.vectors, dtype=float)[self.codes[:, j]]
                for j, (node, alphabet) in enumerate(zip(self.nodes, self.alphabets))}

    def rows(self, start: int, stop: int) -> BatchEvidence:
        """Rows ``start:stop`` (positions), with their unreadable cells."""
        stop = min(stop, self.n_rows)
        columns = tuple(replace(c, codes=c.codes[start:stop],
                                bad_rows=c.bad_rows[(c.bad_rows >= start) & (c.bad_rows < stop)] - start,
                                bad_values=c.bad_values[(c.bad_rows >= start) & (c.bad_rows < stop)])
                        for c in self.columns)
        return replace(self, n_rows=max(stop - start, 0), codes=self.codes[start:stop],
                       index=None if self.index is None else self.index[start:stop], columns=columns)

    def distinct(self) -> tuple[BatchEvidence, np.ndarray]:
        """The distinct rows (each evidence pattern once) and, per row, the index of its pattern.

        With no observed node every row is the one empty pattern.

        Examples
        --------
        >>> evidence = BatchEvidence.from_columns([encode_column(["yes", "no", "yes"], "fatigue", ("no", "yes"))])
        >>> patterns, inverse = evidence.distinct()
        >>> patterns.n_rows, inverse.tolist()
        (2, [1, 0, 1])
        """
        patterns, inverse = distinct_rows(self.codes, [len(a.vectors) for a in self.alphabets])
        if not self.nodes:
            patterns = np.zeros((1, 0), dtype=np.int64)
        return BatchEvidence(n_rows=patterns.shape[0], nodes=self.nodes, codes=patterns,
                             alphabets=self.alphabets, case=self.case), inverse

    def with_codes(self, codes: np.ndarray, *, columns: Sequence[int] | None = None) -> BatchEvidence:
        """Other rows over the same alphabets (of ``columns``, default all): e.g. variants of each row."""
        picked = range(len(self.nodes)) if columns is None else list(columns)
        codes = np.asarray(codes, dtype=np.int64)
        return BatchEvidence(n_rows=codes.shape[0], nodes=tuple(self.nodes[j] for j in picked), codes=codes,
                             alphabets=tuple(self.alphabets[j] for j in picked), case=self.case)

    def with_unobserved(self) -> BatchEvidence:
        """The same evidence with an all-ones ("no finding") code in every alphabet (see :attr:`unobserved`)."""
        alphabets = []
        for alphabet in self.alphabets:
            vectors = np.asarray(alphabet.vectors, dtype=float)
            labels = tuple(alphabet.labels) or tuple("" for _ in range(len(vectors)))
            if _unobserved_code(alphabet) is None:
                vectors, labels = np.vstack([vectors, np.ones((1, vectors.shape[1]))]), labels + (UNOBSERVED,)
            alphabets.append(Alphabet(vectors=vectors, labels=labels))
        return replace(self, alphabets=tuple(alphabets))

    @property
    def unobserved(self) -> np.ndarray:
        """The "no finding" code of each column (``-1`` where its alphabet has none)."""
        codes = [_unobserved_code(a) for a in self.alphabets]
        return np.asarray([-1 if c is None else c for c in codes], dtype=np.int64)


def _one_row_count(sizes: Mapping[str, int], n_rows: int | None, what: str) -> int:
    """The one row count of a batch: every column's, and ``n_rows`` when given."""
    if n_rows is None:
        if not sizes:
            raise InputError("evidence: no node is observed; expected n_rows, the number of rows (pass n_rows=).")
        n_rows = next(iter(sizes.values()))
        source = f"the {what} node {next(iter(sizes))!r} has"
    else:
        source = "n_rows is"
    for node, size in sizes.items():
        if size != n_rows:
            raise InputError(f"evidence: {what} node {node!r} has {size} rows; expected {n_rows} rows, as {source} "
                             "(one row count for every node).")
    return int(n_rows)

"""Evidence values to likelihood arrays.

A finding on a node is a likelihood vector over its states: a state is one-hot, a set of
states is an indicator, soft evidence is any non-negative vector, no finding is all ones.
For tables, each column is encoded as small integer codes into a per-node *alphabet* of
likelihood vectors (the node's states one-hot, then "unobserved", then any sets or soft
vectors a codebook defines), so identical rows can be found by comparing integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ._errors import EvidenceError, one_of

__all__ = ["finding_likelihood", "case_likelihood", "Alphabet", "default_alphabet", "EncodedColumn", "encode_column",
           "YES_NO_SPELLINGS"]

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
        A state; a set (list/tuple/set) of states; or a likelihood ``{state: weight}``
        (states left out weigh 0).

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
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0 \
                    or not np.isfinite(weight):
                raise EvidenceError(f"evidence {node}: likelihood of {state!r} is {weight!r}; expected a finite "
                                    "non-negative number.")
            vector[states.index(state)] = float(weight)
        if not vector.any():
            raise EvidenceError(f"evidence {node}: the likelihood {dict(value)!r} is zero for every state; expected "
                                "at least one positive weight.")
        return vector
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


def case_likelihood(states: Mapping[str, Sequence[str]], evidence: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Likelihood arrays ``[1, n_states]`` for one case's evidence; ``None`` values are skipped.

    Examples
    --------
    >>> case_likelihood({"a": ("no", "yes")}, {"a": "yes"})["a"]
    array([[0., 1.]])
    """
    likelihood = {}
    for node, value in evidence.items():
        if node not in states:
            raise EvidenceError(f"evidence names unknown node {node!r}; expected one of {one_of(states)}.")
        if value is None:
            continue
        likelihood[node] = finding_likelihood(node, list(states[node]), value)[None, :]
    return likelihood


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
    bad_values: list
    expected: str


def _plain_lookup(states: Sequence[str]) -> dict[str, int]:
    lookup = {s: i for i, s in enumerate(states)}
    lookup.update({s.lower(): i for i, s in enumerate(states)})
    if len(states) == 2 and tuple(states) in (("no", "yes"), ("absent", "present")):
        lookup.update(YES_NO_SPELLINGS)
    return lookup


def encode_column(values, node: str, states: Sequence[str], column: str | None = None) -> EncodedColumn:
    """Encode raw cell values (state names or yes/no spellings; blank = unobserved) as codes.

    Parameters
    ----------
    values : array-like
        The column's cells. ``None``, NaN and blank strings mean "no finding".
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
    import pandas as pd  # a pgmpy dependency; kept out of the engine's import path

    alphabet = default_alphabet(states)
    unobserved = alphabet.unobserved
    lookup = _plain_lookup(states)
    positions, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    table = np.empty(len(uniques) + 1, dtype=np.int64)
    table[-1] = unobserved  # factorize's NaN sentinel -1 lands here
    bad_unique = np.zeros(len(uniques) + 1, dtype=bool)
    for k, raw in enumerate(uniques):
        text = str(raw).strip()
        if text == "" or text.lower() == "nan":
            table[k] = unobserved
        elif text in lookup or text.lower() in lookup:
            table[k] = lookup.get(text, lookup.get(text.lower()))
        else:
            table[k] = unobserved
            bad_unique[k] = True
    codes = table[positions]
    bad_rows = np.flatnonzero(bad_unique[positions])
    bad_values = [uniques[positions[r]] for r in bad_rows[:1000]]
    expected = one_of(states)
    if len(states) == 2 and tuple(states) in (("no", "yes"), ("absent", "present")):
        expected += ", or yes/no, y/n, true/false, 1/0 (any case)"
    return EncodedColumn(node=node, column=column or node, codes=codes, alphabet=alphabet, bad_rows=bad_rows,
                         bad_values=bad_values, expected=expected)

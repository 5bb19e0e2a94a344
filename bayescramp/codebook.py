"""Codebooks: which survey column informs which node, and what each code means.

A codebook is a TOML file (format in the README, worked example in
``bayescramp/data/example_codebook.toml``)::

    [codebook]
    id_columns = ["SEQN"]            # passed through to the output
    keep_columns = ["WTINT2YR"]      # passed through too (survey weights are never used)

    [nodes.muscle_spasms]
    column = "BCQ020"
    code_set = "nhanes_yes_no"       # 1 = yes, 2 = no; 7, 9, 77, 99, "." = no finding

    [nodes.cramp_timing]
    column = "SLQ160"                # one column may inform several nodes
    code_set = "nhanes_frequency_0_4"
    map = { never = ["no_cramps", "day"], often = "night", almost_always = "night",
            rarely = ["day", "night"], sometimes = ["day", "night"] }

    [nodes.age_group]
    column = "RIDAGEYR"              # a numeric column, mapped by half-open intervals [low, high)
    units = "years"
    intervals = [ { state = "18_39", low = 18, high = 40 }, { state = "40_64", low = 40, high = 65 },
                  { state = "65_plus", low = 65 } ]     # no high: no upper bound
    unobserved = [7777, 9999]        # explicit codes take precedence over the intervals

    [design]                         # survey-design columns (passed through to the output)
    weights = "WTMEC2YR"
    strata = "SDMVSTRA"
    psu = "SDMVPSU"

A code (or a code set's label) maps to a state, to a **set** of states (a list), to a
**likelihood** (``{yes = 0.8, no = 0.2}``) or to ``"unobserved"`` (no finding on that node,
which is not "no"). Codes are matched trimmed, case-insensitively and numbers by value
(``1``, ``"1"``, ``1.0``). A blank cell is always no finding. In an interval column, a
number that is not a code falls in at most one interval; a number in none (a gap, or
beyond the ends) or text that is not a code is an invalid cell.

Without a codebook, columns named like nodes are evidence, holding state names or the
yes/no spellings of :data:`~bayescramp.evidence.YES_NO_SPELLINGS`.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import warnings
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ._errors import EvidenceError, InputError, UnmatchedColumnsWarning, one_of
from .evidence import (
    UNOBSERVED,
    Alphabet,
    CodeMap,
    EncodedColumn,
    IntervalMap,
    canonical_code,
    default_alphabet,
    encode_codes,
    finding_likelihood,
    plain_code_map,
)

__all__ = ["CodeSet", "NodeEntry", "Interval", "Codebook", "load_codebook", "BUILTIN_CODE_SETS", "DESIGN_KEYS",
           "BUNDLED_CODEBOOKS", "bundled_codebook_path", "column_code_maps", "passthrough_columns",
           "check_unique_columns", "table_encoder", "match_columns", "evidence_like_columns", "plan_columns",
           "UNMATCHED_CHOICES", "resolve_codebook"]

#: The keys of a codebook's ``[design]`` table: survey-design roles, each naming a column.
DESIGN_KEYS = ("weights", "strata", "psu", "fpc")

_TOP_KEYS = {"codebook", "code_sets", "nodes", "design"}
_CODEBOOK_KEYS = {"name", "description", "id_columns", "keep_columns"}
_CODE_SET_KEYS = {"description", "codes", "unobserved"}
_NODE_KEYS = {"column", "code_set", "codes", "unobserved", "map", "optional", "label", "description", "intervals",
              "closed", "units"}
_INTERVAL_KEYS = {"state", "low", "high"}
_CLOSED_SIDES = ("left", "right")


@dataclass(frozen=True)
class CodeSet:
    """A reusable coding: code -> label (or state, set, likelihood), and the codes meaning no finding."""

    name: str
    codes: Mapping[str, Any]
    unobserved: tuple[str, ...]
    description: str = ""


BUILTIN_CODE_SETS: dict[str, CodeSet] = {
    "yes_no": CodeSet(
        "yes_no",
        {"yes": "yes", "y": "yes", "true": "yes", "1": "yes", "no": "no", "n": "no", "false": "no", "0": "no"},
        (), "Common spellings, any case: yes/y/true/1 and no/n/false/0."),
    "nhanes_yes_no": CodeSet(
        "nhanes_yes_no", {"1": "yes", "2": "no"}, ("7", "9", "77", "99", "."),
        "NHANES: 1 = Yes, 2 = No, 7 = Refused, 9 = Don't know (77/99 on two-digit fields), . = missing."),
    "brfss_yes_no": CodeSet(
        "brfss_yes_no", {"1": "yes", "2": "no"}, ("7", "9"),
        "BRFSS: 1 = Yes, 2 = No, 7 = Don't know / Not sure, 9 = Refused."),
    "nhanes_frequency_0_4": CodeSet(
        "nhanes_frequency_0_4",
        {"0": "never", "1": "rarely", "2": "sometimes", "3": "often", "4": "almost_always"},
        ("7", "9", "77", "99", "."),
        "NHANES sleep items (e.g. SLQ160, 2005-08): 0 = Never, 1 = Rarely (1 time a month), 2 = Sometimes "
        "(2-4 times a month), 3 = Often (5-15 times a month), 4 = Almost always (16-30 times a month), "
        "7 = Refused, 9 = Don't know, . = missing."),
}


@dataclass(frozen=True)
class Interval:
    """One interval of a numeric column: numbers from ``low`` to ``high`` mean ``state``.

    ``state`` is a target like a code's (a state, a set of states, a likelihood, or
    ``"unobserved"``); ``None`` bounds are open ends.
    """

    state: Any
    low: float | None = None
    high: float | None = None

    def text(self, closed: str = "left") -> str:
        """The interval as ``[low, high)`` (``closed="left"``) or ``(low, high]`` (``"right"``).

        Examples
        --------
        >>> Interval("65_plus", low=65).text(), Interval("present", high=3.5).text("right")
        ('[65, inf)', '(-inf, 3.5]')
        """
        low = "(-inf" if self.low is None else ("[" if closed == "left" else "(") + _number_text(self.low)
        high = "inf)" if self.high is None else _number_text(self.high) + (")" if closed == "left" else "]")
        return f"{low}, {high}"


@dataclass(frozen=True)
class NodeEntry:
    """One ``[nodes.NAME]`` table: the column that informs node ``node`` and its coding.

    ``intervals`` (in file order) map the numbers of a numeric column; ``closed`` says
    which end of each interval is included (``"left"``: ``[low, high)``); ``units`` is shown
    in messages.
    """

    node: str
    column: str
    code_set: str | None = None
    codes: Mapping[str, Any] = field(default_factory=dict)
    unobserved: tuple[str, ...] = ()
    map: Mapping[str, Any] = field(default_factory=dict)
    optional: bool = False
    intervals: tuple[Interval, ...] = ()
    closed: str = "left"
    units: str = ""


class Codebook:
    """A survey's codebook: columns -> nodes, codes -> states, sets, likelihoods or no finding.

    Build one with :func:`load_codebook` (a TOML file) or :meth:`from_dict`.

    Parameters
    ----------
    entries : sequence of NodeEntry
        One per informed node.
    code_sets : mapping, optional
        The codebook's own named code sets (the built-in ones are always available).
    id_columns, keep_columns : sequence of str
        Columns passed through to the output unchanged.
    design : mapping, optional
        Survey-design columns by role (keys among :data:`DESIGN_KEYS`: ``weights``,
        ``strata``, ``psu``, ``fpc``); they are passed through too (appended to
        ``keep_columns``).
    source : str
        The codebook's file name, used in every error message.

    Examples
    --------
    >>> book = Codebook.from_dict({"nodes": {"leg_cramps": {"column": "CRAMP", "code_set": "nhanes_yes_no"}}})
    >>> book.columns
    ['CRAMP']
    """

    def __init__(self, entries: Sequence[NodeEntry], *, code_sets: Mapping[str, CodeSet] | None = None,
                 id_columns: Sequence[str] = (), keep_columns: Sequence[str] = (),
                 design: Mapping[str, str] | None = None, source: str = "codebook", name: str = "",
                 description: str = ""):
        self.entries: tuple[NodeEntry, ...] = tuple(entries)
        self.code_sets: dict[str, CodeSet] = {**BUILTIN_CODE_SETS, **dict(code_sets or {})}
        self.id_columns: list[str] = list(id_columns)
        self.design: dict[str, str] = dict(design or {})
        self.keep_columns: list[str] = [c for c in dict.fromkeys(keep_columns) if c not in self.id_columns]
        self.source = source
        self.name = name
        self.description = description

    @property
    def columns(self) -> list[str]:
        """The source columns the codebook reads, in entry order, each once."""
        return list(dict.fromkeys(entry.column for entry in self.entries))

    def __repr__(self) -> str:
        return f"Codebook({self.source!r}, {len(self.entries)} nodes from {len(self.columns)} columns)"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "codebook") -> "Codebook":
        """A codebook from parsed TOML; every problem is listed with its key path.

        Examples
        --------
        >>> Codebook.from_dict({"nodes": {"fatigue": {"column": "TIRED", "codes": {"1": "yes", "2": "no"}}}})
        Codebook('codebook', 1 nodes from 1 columns)
        """
        problems: list[str] = []
        where = source

        def problem(key: str, text: str) -> None:
            problems.append(f"{where}, {key}: {text}")

        _unknown_keys(data, _TOP_KEYS, "", problem)
        header = data.get("codebook", {})
        if not isinstance(header, Mapping):
            problem("codebook", f"got {header!r}; expected a table ([codebook]).")
            header = {}
        _unknown_keys(header, _CODEBOOK_KEYS, "codebook.", problem)
        id_columns = _string_list(header.get("id_columns", []), "codebook.id_columns", problem)
        keep_columns = _string_list(header.get("keep_columns", []), "codebook.keep_columns", problem)
        design = _design_table(data.get("design", {}), problem)
        code_sets = _code_sets(data.get("code_sets", {}), problem)
        known_sets = {**BUILTIN_CODE_SETS, **code_sets}
        raw_nodes = data.get("nodes", {})
        if not isinstance(raw_nodes, Mapping) or not raw_nodes:
            problem("nodes", "no node is mapped; expected at least one [nodes.NAME] table with a column.")
            raw_nodes = {}
        entries = [entry for node, raw in raw_nodes.items()
                   if (entry := _node_entry(str(node), raw, known_sets, problem)) is not None]
        for role, column in design.items():
            mapped = [entry.node for entry in entries if entry.column == column]
            if mapped:
                problem(f"design.{role}", f"column {column!r} is also mapped to node {mapped[0]} "
                                          f"(nodes.{mapped[0]}.column); expected a design column that is not "
                                          "evidence.")
        if problems:
            raise InputError(problems)
        return cls(entries, code_sets=code_sets, id_columns=id_columns, keep_columns=keep_columns, design=design,
                   source=source, name=str(header.get("name", "")), description=str(header.get("description", "")))

    def code_maps(self, network, columns: Sequence[str] | None = None, *, source: str = "data") -> list[CodeMap]:
        """The code maps of this codebook for ``network``, checked against the table's ``columns``.

        Parameters
        ----------
        network : CompiledNetwork
        columns : sequence of str, optional
            The table's column names; entries whose column is absent are an error unless
            marked ``optional = true`` (skipped then).
        source : str
            The table's name for messages.

        Raises
        ------
        InputError
            Listing every problem: unknown node or state (with the codebook key path), a
            column missing from the table. An entry for a node the model lacks is skipped
            when its column is not in the table (so one codebook serves models with and
            without, say, ``sex``) and an error when it is.

        Examples
        --------
        >>> from bayescramp.engine import compile_spec
        >>> from bayescramp.priors import load_spec
        >>> book = Codebook.from_dict({"nodes": {"leg_cramps": {"column": "CR", "code_set": "nhanes_yes_no"}}})
        >>> [m.lookup["1"] for m in book.code_maps(compile_spec(load_spec()), ["CR"])]
        [1]
        """
        problems: list[str] = []
        maps = []
        found = None if columns is None else match_columns(self.columns, columns, source=source)
        for entry in self.entries:
            key = f"nodes.{entry.node}"
            if entry.node not in network.states:
                if found is not None and entry.column not in found:
                    continue  # nothing to map: the column is not in this table either
                close = difflib.get_close_matches(entry.node, list(network.states), n=1)
                in_table = "" if found is None else f" (its column {entry.column!r} is in {source})"
                problems.append(f"{self.source}, {key}: the model has no node {entry.node!r}{in_table}; expected one "
                                f"of {one_of(network.names)}" + (f" (did you mean {close[0]!r}?)" if close else "")
                                + "; fix the node name, score with a model that has it, or leave the column out.")
                continue
            if found is not None and entry.column not in found:
                if entry.optional:
                    continue
                problems.append(f"{source}: has no column {entry.column!r} (mapped to {entry.node} by "
                                f"{self.source}, {key}.column); columns seen: {one_of(columns)}; expected the "
                                "column, or optional = true in that codebook entry.")
                continue
            try:
                code_map = self._code_map(entry, network.states[entry.node])
            except _EntryProblems as error:
                problems.extend(error.problems)
                continue
            maps.append(code_map if found is None else replace(code_map, column=found[entry.column]))
        if problems:
            raise InputError(problems)
        return maps

    def _code_map(self, entry: NodeEntry, states: tuple[str, ...]) -> CodeMap:
        key = f"{self.source}, nodes.{entry.node}"
        builder = _AlphabetBuilder(entry.node, states)
        lookup: dict[str, int] = {}
        shown: dict[str, list[str]] = {}
        problems: list[str] = []

        def add(code: str, target: Any, where: str) -> None:
            try:
                index, label = builder.index(target)
            except EvidenceError as error:
                problems.append(f"{key}.{where}: {error.problems[0]}")
                return
            lookup[code] = index
            shown.setdefault(label, []).append(code)

        if entry.code_set is not None:
            code_set = self.code_sets[entry.code_set]
            for code, label in code_set.codes.items():
                where = f"map.{label}" if label in entry.map else f"code_set ({entry.code_set}: {code} = {label})"
                add(code, entry.map.get(label, label), where)
            for code in code_set.unobserved:
                add(code, UNOBSERVED, "code_set")
        for code, target in entry.codes.items():
            add(code, target, f"codes.{code}")
        for code in entry.unobserved:
            add(code, UNOBSERVED, "unobserved")
        interval_indices = []
        for position, interval in enumerate(entry.intervals):
            try:
                interval_indices.append(builder.index(interval.state))
            except EvidenceError as error:
                problems.append(f"{key}.intervals[{position}].state: {error.problems[0]}")
        if problems:
            raise _EntryProblems(problems)
        shown.setdefault("no finding", []).append("blank")
        expected = "; ".join(f"{', '.join(codes)} ({label})" for label, codes in shown.items())
        intervals = None
        if entry.intervals:
            intervals = _interval_map(entry.intervals, [index for index, _ in interval_indices], entry.closed)
            ranges = "; ".join(f"{interval.text(entry.closed)} ({label})" for interval, (_, label)
                               in sorted(zip(entry.intervals, interval_indices), key=lambda pair: _low_end(pair[0])))
            units = f" ({entry.units})" if entry.units else ""
            expected = f"a number{units} in {ranges}; or {expected}"
        return CodeMap(node=entry.node, column=entry.column, alphabet=builder.alphabet(), lookup=lookup,
                       expected=f"{expected} [{self.source}, nodes.{entry.node}]", intervals=intervals)

    def encoder(self, *, id_columns: Sequence[str] | None = None, keep_columns: Sequence[str] | None = None,
                unmatched: str = "warn") -> Callable[[Any, Any], tuple[list[EncodedColumn], list[str]]]:
        """A table encoder ``(network, DataFrame) -> (encoded columns, pass-through names)``.

        This is what :meth:`bayescramp.Model.score` calls with ``codebook=``.

        Examples
        --------
        >>> import pandas as pd
        >>> from bayescramp.engine import compile_spec
        >>> from bayescramp.priors import load_spec
        >>> book = Codebook.from_dict({"codebook": {"id_columns": ["ID"]},
        ...                            "nodes": {"leg_cramps": {"column": "CR", "code_set": "nhanes_yes_no"}}})
        >>> encoded, passthrough = book.encoder()(compile_spec(load_spec()), pd.DataFrame({"ID": [7], "CR": [1]}))
        >>> encoded[0].codes.tolist(), passthrough
        ([1], ['ID'])
        """
        return table_encoder(self, id_columns=id_columns, keep_columns=keep_columns, unmatched=unmatched)


class _EntryProblems(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class _AlphabetBuilder:
    """States one-hot, unobserved, then each distinct set or likelihood vector a code stands for."""

    def __init__(self, node: str, states: tuple[str, ...]):
        self.node = node
        self.states = states
        base = default_alphabet(states)
        self.vectors = list(base.vectors)
        self.labels = list(base.labels)
        self.by_state = {s.casefold(): i for i, s in enumerate(states)}
        if tuple(states) == ("absent", "present"):
            self.by_state.update({"no": 0, "yes": 1})

    def index(self, target: Any) -> tuple[int, str]:
        if isinstance(target, str):
            if target == UNOBSERVED:
                return len(self.states), "no finding"
            if target.casefold() in self.by_state:
                k = self.by_state[target.casefold()]
                return k, self.states[k]
            raise EvidenceError(f"{target!r} is not a state of {self.node}; expected one of {one_of(self.states)} "
                                f"or {UNOBSERVED!r}.")
        if isinstance(target, list):
            target = [self.states[self.by_state[t.casefold()]] if isinstance(t, str) and t.casefold() in
                      self.by_state else t for t in target]
        vector = finding_likelihood(self.node, list(self.states), target)
        if np.all(vector == 1.0):
            return len(self.states), "no finding"
        if isinstance(target, list) and vector.sum() == 1.0:
            k = int(np.argmax(vector))
            return k, self.states[k]
        label = ("|".join(s for s, v in zip(self.states, vector) if v) if isinstance(target, list)
                 else ",".join(f"{s}:{v:g}" for s, v in zip(self.states, vector)))
        for k, existing in enumerate(self.vectors):
            if np.array_equal(existing, vector):
                return k, self.labels[k]
        self.vectors.append(vector)
        self.labels.append(label)
        return len(self.vectors) - 1, label

    def alphabet(self) -> Alphabet:
        return Alphabet(vectors=np.vstack(self.vectors), labels=tuple(self.labels))


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _interval_map(intervals: Sequence[Interval], indices: Sequence[int], closed: str) -> IntervalMap:
    """The searchsorted form of non-overlapping intervals: sorted breaks, an alphabet index per stretch."""
    breaks = np.unique([bound for interval in intervals for bound in (interval.low, interval.high)
                        if bound is not None]).astype(float)
    bins = np.full(len(breaks) + 1, -1, dtype=np.int64)
    for interval, index in zip(intervals, indices):
        first = 0 if interval.low is None else int(np.searchsorted(breaks, interval.low)) + 1
        last = len(breaks) if interval.high is None else int(np.searchsorted(breaks, interval.high))
        bins[first:last + 1] = index
    return IntervalMap(breaks=breaks, bins=bins, closed=closed)


def _bound(value: Any, key: str, problem) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        problem(key, f"got {value!r}; expected a finite number (leave the key out for an open end).")
        return None
    return float(value)


def _interval_list(value: Any, key: str, problem) -> tuple[Interval, ...]:
    """Parse ``intervals = [{ state, low, high }, ...]``; bounds numeric, low < high, no overlap."""
    if not isinstance(value, list) or not value:
        problem(key + ".intervals", f"got {value!r}; expected a non-empty list of tables "
                                    "{ state = STATE, low = NUMBER, high = NUMBER }.")
        return ()
    parsed = [(position, interval) for position, raw in enumerate(value)
              if (interval := _interval(raw, f"{key}.intervals[{position}]", problem)) is not None]
    _no_overlap(parsed, key, problem)
    return tuple(interval for _, interval in parsed)


def _interval(raw: Any, where: str, problem) -> Interval | None:
    """One ``{ state, low, high }`` table, or ``None`` (with a problem)."""
    if not isinstance(raw, Mapping):
        problem(where, f"got {raw!r}; expected a table {{ state = STATE, low = NUMBER, high = NUMBER }}.")
        return None
    _unknown_keys(raw, _INTERVAL_KEYS, where + ".", problem)
    if "state" not in raw:
        problem(where, "has no state; expected state = STATE (or a list of states, a likelihood, or "
                       f"{UNOBSERVED!r}).")
        return None
    if not isinstance(raw["state"], (str, list, Mapping)):
        problem(where + ".state", f"got {raw['state']!r}; expected a state, a list of states, a table "
                                  f"{{STATE = LIKELIHOOD}}, or {UNOBSERVED!r}.")
        return None
    if "low" not in raw and "high" not in raw:
        problem(where, "has neither low nor high; expected at least one bound (an interval covering every "
                       "number would leave nothing for the others).")
        return None
    low = _bound(raw["low"], where + ".low", problem) if "low" in raw else None
    high = _bound(raw["high"], where + ".high", problem) if "high" in raw else None
    if ("low" in raw and low is None) or ("high" in raw and high is None):
        return None
    if low is not None and high is not None and not low < high:
        problem(where, f"low = {_number_text(low)} is not below high = {_number_text(high)}; expected "
                       "low < high.")
        return None
    return Interval(raw["state"], low, high)


def _no_overlap(parsed: Sequence[tuple[int, Interval]], key: str, problem) -> None:
    """Each overlap of two intervals (by their position in the list) is a problem."""
    reach: tuple[int, Interval] | None = None  # the interval reaching highest so far
    for position, interval in sorted(parsed, key=lambda item: _low_end(item[1])):
        if reach is not None:
            top = np.inf if reach[1].high is None else reach[1].high
            if interval.low is None or interval.low < top:
                problem(f"{key}.intervals[{position}]",
                        f"{interval.text()} overlaps intervals[{reach[0]}] {reach[1].text()}; expected intervals "
                        "that do not overlap (each number in one interval at most; gaps are allowed, and a number "
                        "in a gap is an invalid cell).")
        if reach is None or (reach[1].high is not None and (interval.high is None or interval.high > reach[1].high)):
            reach = (position, interval)


def _low_end(interval: Interval) -> float:
    return -np.inf if interval.low is None else interval.low


def _interval_options(raw: Mapping, key: str, problem) -> tuple[str, str]:
    closed, units = raw.get("closed", "left"), raw.get("units", "")
    for option in ("closed", "units"):
        if option in raw and "intervals" not in raw:
            problem(f"{key}.{option}", "applies to intervals only; expected intervals = [...] in this entry, or no "
                                       f"{option}.")
    if closed not in _CLOSED_SIDES:
        problem(key + ".closed", f"got {closed!r}; expected \"left\" (intervals [low, high), the default) or "
                                 "\"right\" ((low, high]).")
        closed = "left"
    if not isinstance(units, str):
        problem(key + ".units", f"got {units!r}; expected text such as \"mmol/L\".")
        units = ""
    return closed, units


def _code_sets(raw_sets: Any, problem: Callable[[str, str], None]) -> dict[str, CodeSet]:
    """A codebook's own ``[code_sets.NAME]`` tables (a built-in name may not be reused)."""
    code_sets: dict[str, CodeSet] = {}
    if not isinstance(raw_sets, Mapping):
        problem("code_sets", f"got {raw_sets!r}; expected tables [code_sets.NAME].")
        return code_sets
    for set_name, raw in raw_sets.items():
        key = f"code_sets.{set_name}"
        if set_name in BUILTIN_CODE_SETS:
            problem(key, f"{set_name!r} is a built-in code set; expected another name (built-in: "
                         f"{one_of(BUILTIN_CODE_SETS)}).")
            continue
        if not isinstance(raw, Mapping):
            problem(key, f"got {raw!r}; expected a table with codes and unobserved.")
            continue
        _unknown_keys(raw, _CODE_SET_KEYS, key + ".", problem)
        codes = _codes_table(raw.get("codes", {}), key + ".codes", problem)
        unobserved = _code_list(raw.get("unobserved", []), key + ".unobserved", problem)
        _no_code_twice(codes, unobserved, key, problem)
        code_sets[set_name] = CodeSet(set_name, codes, unobserved, str(raw.get("description", "")))
    return code_sets


def _node_entry(node: str, raw: Any, known_sets: Mapping[str, CodeSet],
                problem: Callable[[str, str], None]) -> NodeEntry | None:
    """One ``[nodes.NAME]`` table, or ``None`` (with problems) when it cannot be used."""
    key = f"nodes.{node}"
    if not isinstance(raw, Mapping):
        problem(key, f"got {raw!r}; expected a table with column and codes or code_set.")
        return None
    _unknown_keys(raw, _NODE_KEYS, key + ".", problem)
    column = raw.get("column")
    if not isinstance(column, str) or not column:
        problem(key + ".column", f"got {column!r}; expected the name of the source column.")
        return None
    code_set = raw.get("code_set")
    if code_set is not None and code_set not in known_sets:
        close = difflib.get_close_matches(str(code_set), list(known_sets), n=1)
        problem(key + ".code_set", f"unknown code set {code_set!r}; expected one of {one_of(known_sets)}"
                                   + (f" (did you mean {close[0]!r}?)." if close else "."))
        return None
    codes = _codes_table(raw.get("codes", {}), key + ".codes", problem)
    unobserved = _code_list(raw.get("unobserved", []), key + ".unobserved", problem)
    intervals = _interval_list(raw["intervals"], key, problem) if "intervals" in raw else ()
    closed, units = _interval_options(raw, key, problem)
    if code_set is None and not codes and "intervals" not in raw:
        problem(key, "has neither codes nor code_set nor intervals; expected codes = { CODE = STATE, ... }, "
                     f"code_set = one of {one_of(known_sets)}, or intervals = [ {{ state = STATE, low = "
                     "NUMBER, high = NUMBER }, ... ].")
        return None
    if code_set is not None and "intervals" in raw:
        problem(key, f"has both code_set ({code_set!r}) and intervals; expected intervals with codes and "
                     "unobserved only (a code set's codes, such as 7 or 9, could shadow real measurements; "
                     "list the special codes of this column in unobserved = [...] or codes = {...}).")
        return None
    mapping = _label_map(raw, key, code_set, known_sets, problem)
    if code_set is not None:
        _no_code_shadowed(codes, unobserved, known_sets[code_set], key, problem)
    _no_code_twice(codes, unobserved, key, problem)
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        problem(key + ".optional", f"got {optional!r}; expected true or false.")
        optional = False
    return NodeEntry(node=node, column=column, code_set=code_set, codes=codes, unobserved=unobserved,
                     map=dict(mapping), optional=optional, intervals=intervals, closed=closed, units=units)


def _label_map(raw: Mapping, key: str, code_set: str | None, known_sets: Mapping[str, CodeSet],
               problem: Callable[[str, str], None]) -> Mapping:
    """A node entry's ``map`` (code-set label -> state), each label checked against its code set."""
    mapping = raw.get("map", {})
    if not isinstance(mapping, Mapping):
        problem(key + ".map", f"got {mapping!r}; expected a table label -> state.")
        mapping = {}
    if mapping and code_set is None:
        problem(key + ".map", "needs a code_set whose labels it maps; expected code_set = NAME.")
    if code_set is not None:
        labels = set(known_sets[code_set].codes.values())
        for label in mapping:
            if label not in labels:
                problem(f"{key}.map.{label}", f"{label!r} is not a label of code set {code_set!r}; "
                                              f"expected one of {one_of(sorted(map(str, labels)))}.")
    return mapping


def _no_code_shadowed(codes: Mapping, unobserved: Sequence, code_set: CodeSet, key: str,
                      problem: Callable[[str, str], None]) -> None:
    """A code an entry maps itself must not also come from its code set."""
    inherited = dict(code_set.codes)
    inherited.update(dict.fromkeys(code_set.unobserved, UNOBSERVED))
    for code in list(codes) + list(unobserved):
        if code in inherited:
            problem(key, f"code {code!r} is mapped twice (by code set {code_set.name!r} and by this "
                         "entry); expected each code once (leave it to the code set, or use codes "
                         "instead of code_set).")


def _design_table(value: Any, problem) -> dict[str, str]:
    if not isinstance(value, Mapping):
        problem("design", f"got {value!r}; expected a table [design] with weights, strata, psu or fpc.")
        return {}
    _unknown_keys(value, set(DESIGN_KEYS), "design.", problem)
    design = {}
    for role in DESIGN_KEYS:
        if role not in value:
            continue
        column = value[role]
        if not isinstance(column, str) or not column.strip():
            problem(f"design.{role}", f"got {column!r}; expected the name of the survey's {role} column.")
            continue
        design[role] = column
    return design


def _unknown_keys(table: Mapping, allowed: set[str], prefix: str, problem) -> None:
    if not isinstance(table, Mapping):
        return
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            problem(f"{prefix}{key}", f"unknown key; expected one of {one_of(sorted(allowed))}"
                                      + (f" (did you mean {close[0]!r}?)." if close else "."))


def _string_list(value: Any, key: str, problem) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problem(key, f"got {value!r}; expected a list of column names.")
        return []
    return list(dict.fromkeys(value))


def _canonical_key(code: Any, key: str, problem) -> str | None:
    if isinstance(code, (dict, list)):
        problem(key, f"got {code!r}; expected a code (text or a number).")
        return None
    text = canonical_code(code)
    if text is None or text == "":
        problem(key, f"got {code!r}; expected a non-blank code (blank cells always mean no finding).")
        return None
    return text


def _codes_table(value: Any, key: str, problem) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        problem(key, f"got {value!r}; expected a table CODE = STATE (or [STATES] or {{STATE = LIKELIHOOD}}).")
        return {}
    codes: dict[str, Any] = {}
    for code, target in value.items():
        canonical = _canonical_key(code, f"{key}.{code}", problem)
        if canonical is None:
            continue
        if canonical in codes:
            problem(f"{key}.{code}", f"code {code!r} is mapped twice (it is the same code as an earlier key, "
                                     "compared trimmed, in any case and numbers by value); expected each code once.")
            continue
        if not isinstance(target, (str, list, Mapping)):
            problem(f"{key}.{code}", f"got {target!r}; expected a state, a list of states, a table "
                                     f"{{STATE = LIKELIHOOD}}, or {UNOBSERVED!r}.")
            continue
        codes[canonical] = target
    return codes


def _code_list(value: Any, key: str, problem) -> tuple[str, ...]:
    if not isinstance(value, list):
        value = [value]
    codes = []
    for position, code in enumerate(value):
        canonical = _canonical_key(code, f"{key}[{position}]", problem)
        if canonical is not None:
            codes.append(canonical)
    return tuple(dict.fromkeys(codes))


def _no_code_twice(codes: Mapping[str, Any], unobserved: Sequence[str], key: str, problem) -> None:
    for code in unobserved:
        if code in codes:
            problem(key, f"code {code!r} is mapped twice (in codes, to {codes[code]!r}, and in unobserved); "
                         "expected each code once.")


#: The codebooks shipped in ``bayescramp/data``, by the name :func:`load_codebook` accepts.
BUNDLED_CODEBOOKS = {"example": "example_codebook.toml", "nhanes": "nhanes_codebook.toml",
                     "brfss": "brfss_codebook.toml"}


def bundled_codebook_path(name: str) -> Path:
    """The path of a shipped codebook: ``"example"``, ``"nhanes"`` or ``"brfss"``.

    Examples
    --------
    >>> bundled_codebook_path("nhanes").name
    'nhanes_codebook.toml'
    """
    if name not in BUNDLED_CODEBOOKS:
        raise InputError(f"codebook {name!r}: no bundled codebook of that name; expected one of "
                         f"{one_of(BUNDLED_CODEBOOKS)} or the path of a .toml codebook.")
    return Path(str(resources.files("bayescramp").joinpath("data", BUNDLED_CODEBOOKS[name])))


def load_codebook(path: str | Path) -> Codebook:
    """Read a codebook TOML file, or a shipped one by name.

    Parameters
    ----------
    path : str or Path
        The codebook file (see the module docstring and the README for its format), or
        the name of a shipped codebook: ``"nhanes"``, ``"brfss"``, ``"example"``
        (:data:`BUNDLED_CODEBOOKS`; a file of that name in the working folder wins).

    Returns
    -------
    Codebook

    Raises
    ------
    InputError
        The file is missing or not TOML, or has problems (each named with its key path).

    Examples
    --------
    >>> from importlib import resources
    >>> book = load_codebook(resources.files("bayescramp") / "data" / "example_codebook.toml")
    >>> book.id_columns, book.keep_columns
    (['SEQN'], ['WTINT2YR'])
    >>> load_codebook("nhanes").design
    {'weights': 'WTMEC2YR', 'strata': 'SDMVSTRA', 'psu': 'SDMVPSU'}
    """
    path = Path(str(path))
    if not path.is_file() and str(path) in BUNDLED_CODEBOOKS:
        path = bundled_codebook_path(str(path))
    if not path.is_file():
        raise InputError(f"{path}: no such codebook file; expected a path to a .toml codebook or the name of a "
                         f"bundled one ({one_of(BUNDLED_CODEBOOKS)}).")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); expected a UTF-8 TOML "
                         "codebook.") from None
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{path}: not valid TOML: {error}; expected TOML with each key once (is a node or "
                         "code mapped twice?).") from None
    return Codebook.from_dict(data, source=path.name)


def resolve_codebook(codebook: Codebook | str | os.PathLike | None) -> Codebook | None:
    """The one reader of every ``codebook=`` argument: a :class:`Codebook` as is, a path (or bundled name) loaded.

    Examples
    --------
    >>> resolve_codebook("nhanes").design["psu"]
    'SDMVPSU'
    >>> resolve_codebook(None) is None
    True
    """
    if codebook is None or isinstance(codebook, Codebook):
        return codebook
    if isinstance(codebook, (str, os.PathLike)):
        return load_codebook(codebook)
    raise InputError(f"codebook: got {type(codebook).__name__}; expected a Codebook (load_codebook(path)), the "
                     "path of a codebook TOML file or a bundled codebook's name.")


def check_unique_columns(columns: Sequence[str], source: str) -> None:
    """Raise :class:`InputError` if a column name appears more than once.

    Examples
    --------
    >>> check_unique_columns(["a", "b"], "survey.csv")
    """
    seen: set[str] = set()
    duplicated = [c for c in columns if c in seen or seen.add(c)]
    if duplicated:
        raise InputError(f"{source}: column {duplicated[0]!r} appears more than once in the header; expected unique "
                         "column names (rename one).")


#: What to do with columns that look like evidence but are not used (see :func:`evidence_like_columns`).
UNMATCHED_CHOICES = ("warn", "error", "ignore")
#: How close (difflib ratio of the letters and digits) a column name must be to a node name to look like it.
NEAR_NODE_NAME = 0.8


def _fold(name: str) -> str:
    return str(name).strip().casefold()


def _letters(name: str) -> str:
    return re.sub(r"[\W_]+", "", _fold(name))


def match_columns(names: Sequence[str], columns: Sequence[str], *, source: str = "data") -> dict[str, str]:
    """The table column each name refers to: equal after stripping surrounding spaces and case-folding.

    Parameters
    ----------
    names : sequence of str
        Node names, codebook columns, id or keep columns.
    columns : sequence of str
        The table's columns.
    source : str
        The table's name for messages.

    Returns
    -------
    dict
        ``name -> column`` for every name some column matches (names no column matches are left out).

    Raises
    ------
    InputError
        Two columns match one name (``fatigue`` and ``Fatigue ``): which one is meant cannot be told.

    Examples
    --------
    >>> match_columns(["leg_cramps", "fatigue"], [" leg_cramps", "Fatigue", "id"])
    {'leg_cramps': ' leg_cramps', 'fatigue': 'Fatigue'}
    """
    by_fold: dict[str, list[str]] = {}
    for column in columns:
        by_fold.setdefault(_fold(column), []).append(column)
    folds: dict[str, list[str]] = {}
    for name in names:
        folds.setdefault(_fold(name), []).append(name)
    found = {}
    for name in dict.fromkeys(names):
        candidates = by_fold.get(_fold(name), [])
        if len(folds[_fold(name)]) > 1:  # names that differ only in case are matched exactly
            candidates = [c for c in candidates if c == name]
        if len(candidates) > 1:
            raise InputError(f"{source}: columns {one_of(repr(c) for c in candidates)} all match {name!r} (names "
                             "are compared ignoring case and surrounding spaces); expected one column per name "
                             "(rename or drop the others).")
        if candidates:
            found[name] = candidates[0]
    return found


def evidence_like_columns(columns: Sequence[str], used: Sequence[str], nodes: Sequence[str],
                          codebook_columns: Sequence[str] = ()) -> dict[str, str]:
    """Columns that look like evidence but are not used, each with the node or codebook column it resembles.

    A column not in ``used`` looks like evidence when its name, reduced to lower-case letters and
    digits, equals that of a node or codebook column (``Leg Cramps``, ``leg-cramps``,
    ``BCQ_020``), contains a node name of four or more letters (``fatigue_2``,
    ``had_leg_cramps``), or is a near spelling of one (difflib ratio at least
    :data:`NEAR_NODE_NAME`: ``leg_cramp``, ``anaemia``).

    Examples
    --------
    >>> evidence_like_columns(["id", "leg cramps", "fatigue_2", "anaemia"], ["id"], ["leg_cramps", "fatigue", "anemia"])
    {'leg cramps': 'node leg_cramps', 'fatigue_2': 'node fatigue', 'anaemia': 'node anemia'}
    """
    used = set(used)
    candidates = [(_letters(n), f"node {n}", True) for n in nodes]
    candidates += [(_letters(c), f"codebook column {c}", False) for c in codebook_columns]
    # one matcher per node name, its second sequence indexed once (as difflib.get_close_matches does)
    matchers = {key: difflib.SequenceMatcher(None, b=key) for key, _, is_node in candidates if is_node}
    found = {}
    for column in columns:
        if column in used:
            continue
        letters = _letters(column)
        if not letters:
            continue
        for key, label, is_node in candidates:
            if not key:
                continue
            if letters == key or (is_node and len(key) >= 4 and (key in letters or _near(matchers[key], letters))):
                found[column] = label
                break
    return found


def _near(matcher: difflib.SequenceMatcher, letters: str) -> bool:
    matcher.set_seq1(letters)
    return (matcher.real_quick_ratio() >= NEAR_NODE_NAME and matcher.quick_ratio() >= NEAR_NODE_NAME
            and matcher.ratio() >= NEAR_NODE_NAME)


def _report_unmatched(unmatched: Mapping[str, str], policy: str, source: str) -> None:
    if not unmatched or policy == "ignore":
        return
    if policy == "error":
        raise InputError([f"{source}: column {column!r} looks like {like} but is not used as evidence; expected a "
                          "column named exactly like a node (case and surrounding spaces aside) or one a codebook "
                          "maps (rename it, map it in a codebook, or pass unmatched=\"ignore\" / --unmatched ignore "
                          "if it is not evidence)." for column, like in unmatched.items()])
    listed = ", ".join(f"{column!r} (like {like})" for column, like in unmatched.items())
    warnings.warn(f"{source}: {len(unmatched)} column(s) look like evidence but are not used: {listed}; rename them "
                  "to node names, map them in a codebook, or pass unmatched=\"ignore\" if they are not evidence "
                  "(unmatched=\"error\" refuses such tables).", UnmatchedColumnsWarning, stacklevel=4)


def _check_policy(unmatched: str) -> None:
    if unmatched not in UNMATCHED_CHOICES:
        raise InputError(f"unmatched: got {unmatched!r}; expected one of {one_of(UNMATCHED_CHOICES)}.")


def plan_columns(network, columns: Sequence[str], codebook: Codebook | None = None, *,
                 id_columns: Sequence[str] | None = None, keep_columns: Sequence[str] | None = None,
                 source: str = "data", unmatched: str = "warn", require_evidence: bool = True
                 ) -> tuple[list[CodeMap], list[str], dict[str, str]]:
    """Which columns of a table are evidence and which pass through: the one place columns meet nodes.

    Column names match node names (or the codebook's columns, id and keep columns) after
    stripping surrounding spaces and case-folding; two columns matching one name are an error.
    Columns that look like evidence but are not used (:func:`evidence_like_columns`) are
    reported as ``unmatched`` says.

    Parameters
    ----------
    network : CompiledNetwork
    columns : sequence of str
        The table's columns.
    codebook : Codebook, optional
    id_columns, keep_columns : sequence of str, optional
        Pass-through columns (default: the codebook's; with neither, every column not used as evidence).
    source : str
        The table's name for messages.
    unmatched : {"warn", "error", "ignore"}
        ``warn``: an :class:`~bayescramp.UnmatchedColumnsWarning` naming them; ``error``: an
        :class:`InputError`; ``ignore``: nothing.
    require_evidence : bool
        Raise when no column informs the model.

    Returns
    -------
    (code maps, pass-through columns, unmatched)
        ``unmatched`` maps each evidence-like column not used to what it looks like.

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> maps, passthrough, unmatched = plan_columns(compile_spec(load_spec()), ["id", " Fatigue", "leg cramp"],
    ...                                             unmatched="ignore")
    >>> [(m.node, m.column) for m in maps], passthrough, unmatched
    ([('fatigue', ' Fatigue')], ['id', 'leg cramp'], {'leg cramp': 'node leg_cramps'})
    """
    _check_policy(unmatched)
    columns = list(columns)
    check_unique_columns(columns, source)
    if codebook is None and not require_evidence and not match_columns(network.names, columns, source=source):
        maps = []
    else:
        maps = column_code_maps(network, columns, codebook, source=source)
    ids = id_columns if id_columns is not None else (codebook.id_columns if codebook else [])
    keeps = keep_columns if keep_columns is not None else (codebook.keep_columns if codebook else [])
    # survey-design columns pass through too, when the data has them (scoring never uses them)
    design = list(codebook.design.values()) if codebook is not None and keep_columns is None else []
    passthrough = passthrough_columns(columns, maps, ids, keeps, optional=design, source=source)
    named = set(passthrough) if (ids or keeps) else set()
    found = evidence_like_columns(columns, {m.column for m in maps} | named, network.names,
                                  codebook.columns if codebook else ())
    _report_unmatched(found, unmatched, source)
    return maps, passthrough, found


def column_code_maps(network, columns: Sequence[str], codebook: Codebook | None = None, *,
                     source: str = "data") -> list[CodeMap]:
    """Code maps for a table: the codebook's, or (without one) columns named like nodes.

    Names match after stripping surrounding spaces and case-folding (:func:`match_columns`).

    Raises
    ------
    InputError
        When no column informs the model (naming the columns seen), two columns match one
        node, or the codebook does not fit the table or the model.

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> [m.node for m in column_code_maps(compile_spec(load_spec()), ["id", "fatigue"])]
    ['fatigue']
    """
    if codebook is None:
        found = match_columns(network.names, columns, source=source)
        maps = [plain_code_map(node, network.states[node], found[node]) for node in network.names if node in found]
        maps.sort(key=lambda m: list(columns).index(m.column))
        if not maps:
            raise InputError(f"{source}: no column informs the model; columns seen: {one_of(columns) or '(none)'}; "
                             f"expected columns named like nodes ({one_of(network.names)}) or a codebook that maps "
                             "the survey's columns to nodes (--codebook FILE).")
        return maps
    if not match_columns(codebook.columns, columns, source=source):
        raise InputError(f"{source}: none of the columns {codebook.source} maps ({one_of(codebook.columns)}) is in "
                         f"the file, so it cannot inform the model; columns seen: {one_of(columns) or '(none)'}; "
                         "expected a file and codebook that match.")
    return codebook.code_maps(network, columns, source=source)


def passthrough_columns(columns: Sequence[str], maps: Sequence[CodeMap], id_columns: Sequence[str] = (),
                        keep_columns: Sequence[str] = (), *, optional: Sequence[str] = (),
                        source: str = "data") -> list[str]:
    """Columns copied to the output: the id and keep columns if any are named, else every non-evidence column.

    Id and keep columns match like node names (case and surrounding spaces aside).
    ``optional`` columns (a codebook's survey-design columns) are copied when the data has them.

    Examples
    --------
    >>> passthrough_columns(["SEQN", "W", "X"], [], ["seqn"], ["W"])
    ['SEQN', 'W']
    """
    named = list(dict.fromkeys([*id_columns, *keep_columns]))
    if not named:
        used = {m.column for m in maps}
        return [c for c in columns if c not in used]
    found = match_columns(named, columns, source=source)
    missing = [c for c in named if c not in found]
    if missing:
        raise InputError(f"{source}: has no column {missing[0]!r} to pass through (an id or keep column); columns "
                         f"seen: {one_of(columns)}; expected one of them.")
    kept = list(dict.fromkeys(found[c] for c in named))
    present = match_columns(list(optional), columns, source=source)
    return kept + [present[c] for c in dict.fromkeys(optional) if c in present and present[c] not in kept]


def table_encoder(codebook: Codebook | None = None, *, id_columns: Sequence[str] | None = None,
                  keep_columns: Sequence[str] | None = None, unmatched: str = "warn", require_evidence: bool = True
                  ) -> Callable[[Any, Any], tuple[list[EncodedColumn], list[str]]]:
    """A DataFrame encoder ``(network, data, source="data") -> (encoded columns, pass-through names)``.

    With a codebook, its columns and codes; without one, columns named like nodes (see
    :func:`plan_columns`, which also reports columns that look like evidence but are not used,
    as ``unmatched`` says). The id and keep columns default to the codebook's.

    Examples
    --------
    >>> import pandas as pd
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> encode = table_encoder(id_columns=["id"])
    >>> encoded, passthrough = encode(compile_spec(load_spec()), pd.DataFrame({"id": [1], "x": [2], "fatigue": ["n"]}))
    >>> [c.node for c in encoded], passthrough
    (['fatigue'], ['id'])
    """
    _check_policy(unmatched)

    def encode(network, data, source: str = "data") -> tuple[list[EncodedColumn], list[str]]:
        columns = [str(c) for c in data.columns]
        maps, passthrough, _ = plan_columns(network, columns, codebook, id_columns=id_columns,
                                            keep_columns=keep_columns, source=source, unmatched=unmatched,
                                            require_evidence=require_evidence)
        return [encode_codes(data[m.column], m) for m in maps], passthrough

    return encode

"""The model as plain data: nodes, states, parents and CPD parameters.

A :class:`Spec` is what a prior file says, after overlays: every free number is a
:class:`Parameter` carrying its value, plausible range, basis and source. This module
checks a spec (:func:`validate`) and turns it into numbers (:func:`probability_table`);
it reads no files.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np

from ._errors import InputError, SpecError, one_of

__all__ = [
    "Parameter",
    "TableRow",
    "TableCPD",
    "NoisyOrCPD",
    "Node",
    "Prevalence",
    "ConditionalPrevalence",
    "SilentShare",
    "Spec",
    "ROW_SUM_TOLERANCE",
    "MAX_TABLE_ENTRIES",
    "ModelInfo",
    "model_info",
    "table_size",
    "size_error",
    "covaried_values",
    "validate",
    "check",
    "topological_order",
    "probability_table",
    "parameters_by_id",
    "with_parameters",
    "silent_share",
    "replace_parameters",
    "table_parameter_id",
    "leak_parameter_id",
    "link_parameter_id",
]

#: How far a fully explicit table row may stray from summing to 1.
ROW_SUM_TOLERANCE = 1e-6
#: Largest table (CPD or junction-tree clique) the package builds: 2^25 entries, 256 MiB as float64.
#: Larger tables are refused, with the node named, before anything is allocated.
MAX_TABLE_ENTRIES = 1 << 25

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
BASES = ("evidence", "derived", "expert", "imported", "structural", "fitted")


@dataclass(frozen=True)
class Parameter:
    """One free number of the model.

    Attributes
    ----------
    id : str
        Stable identifier, e.g. ``P(diuretic=thiazide|age_group=40_64)`` or ``leak(leg_cramps)``.
    value : float
        The probability (or link strength) used.
    low, high : float
        Plausible range, ``low <= value <= high``.
    basis : str
        ``evidence``, ``derived``, ``expert`` (judgement), ``imported``, ``structural`` or
        ``fitted`` (learned from data by :mod:`bayescramp.learning`).
    source : str
        Evidence-file row ids or a citation.
    note : str
        How the value was derived.
    distribution : mapping or None
        Optional override of the uncertainty distribution used for credible intervals.
    location : str
        Where it was defined (``file, key.path``), for error messages.
    kind : str
        ``table`` (an entry of an explicit table), ``leak`` or ``link`` (of a noisy-OR); filled
        in by the :class:`Node` that holds the parameter.
    state : str
        The node's state a table entry gives the probability of (empty for a leak or link).
    parents : tuple of (str, str)
        ``(parent, state)`` pairs: a table entry's parent configuration, a link's parent and
        its active state (empty for a root's entry or a leak).
    """

    id: str
    value: float
    low: float
    high: float
    basis: str = "expert"
    source: str = ""
    note: str = ""
    distribution: Mapping | None = None
    location: str = ""
    kind: str = ""
    state: str = ""
    parents: tuple[tuple[str, str], ...] = ()

    @property
    def configuration(self) -> str:
        """The parent configuration as text, ``parent=state,...`` (empty for roots and leaks)."""
        return ",".join(f"{parent}={state}" for parent, state in self.parents)


@dataclass(frozen=True)
class TableRow:
    """One named parent configuration of an explicit table.

    ``when`` holds the parents' states in the order of ``Node.parents``;
    ``probability`` maps each state to a :class:`Parameter`, or to ``None`` for the one
    state that takes the remainder.
    """

    when: tuple[str, ...]
    probability: Mapping[str, Parameter | None]
    location: str = ""


@dataclass(frozen=True)
class TableCPD:
    """An explicit conditional probability table with named parent configurations."""

    rows: tuple[TableRow, ...]
    kind: str = field(default="table", init=False)


@dataclass(frozen=True)
class NoisyOrCPD:
    """A leaky noisy-OR for a two-state child.

    ``P(child = first state | u) = (1 - leak) * prod_j (1 - links[j][u_j])`` where a
    parent's first state, or any state without a link, is inactive.
    """

    leak: Parameter
    links: Mapping[str, Mapping[str, Parameter]]
    kind: str = field(default="noisy_or", init=False)


@dataclass(frozen=True)
class Node:
    """A node: its states, parents and CPD, with human-readable label and description."""

    name: str
    states: tuple[str, ...]
    parents: tuple[str, ...]
    cpd: TableCPD | NoisyOrCPD
    label: str = ""
    description: str = ""
    location: str = ""

    def __post_init__(self):
        # every parameter says what it is (kind, state, parent configuration): nothing parses ids
        object.__setattr__(self, "cpd", _annotated(self.cpd, self.parents))


def _annotated(cpd, parents: tuple[str, ...]):
    """``cpd`` with each parameter's ``kind``, ``state`` and ``parents`` filled in."""
    if isinstance(cpd, TableCPD):
        rows = []
        for row in cpd.rows:
            configuration = tuple(zip(parents, row.when))
            probability = {state: replace(p, kind="table", state=state, parents=configuration)
                           if isinstance(p, Parameter) else p for state, p in row.probability.items()}
            rows.append(replace(row, probability=probability))
        return TableCPD(rows=tuple(rows))
    if isinstance(cpd, NoisyOrCPD):
        links = {parent: {state: replace(p, kind="link", state="", parents=((parent, state),))
                          if isinstance(p, Parameter) else p for state, p in by_state.items()}
                 for parent, by_state in cpd.links.items()}
        leak = replace(cpd.leak, kind="leak", state="", parents=()) if isinstance(cpd.leak, Parameter) else cpd.leak
        return NoisyOrCPD(leak=leak, links=links)
    return cpd


@dataclass(frozen=True)
class Prevalence:
    """A published population figure a node's prior marginal should match."""

    node: str
    state: str
    value: float
    low: float
    high: float
    source: str = ""
    location: str = ""


@dataclass(frozen=True)
class ConditionalPrevalence:
    """A published figure for one stratum: ``P(node = state | given)`` should lie in ``[low, high]``."""

    node: str
    state: str
    given: Mapping[str, str]
    value: float
    low: float
    high: float
    source: str = ""
    location: str = ""


@dataclass(frozen=True)
class SilentShare:
    """A published share of people with a deficiency who have none of the symptoms it causes."""

    node: str
    value: float
    low: float
    high: float
    source: str = ""
    note: str = ""
    location: str = ""


@dataclass(frozen=True)
class Spec:
    """A whole model: nodes (in definition order), metadata and the published figures it is checked against."""

    nodes: Mapping[str, Node]
    meta: Mapping[str, object] = field(default_factory=dict)
    published_prevalence: Mapping[str, Prevalence] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    published_conditional: tuple[ConditionalPrevalence, ...] = ()
    published_asymptomatic: Mapping[str, SilentShare] = field(default_factory=dict)

    @property
    def node_names(self) -> list[str]:
        """Node names in topological order (parents before children)."""
        return topological_order(self)

    def states(self, node: str) -> tuple[str, ...]:
        """The states of ``node``."""
        return self.nodes[node].states


def table_parameter_id(node: str, state: str, parents: tuple[str, ...], when: tuple[str, ...]) -> str:
    """Id of a table entry: ``P(node=state|parent=s,...)`` or ``P(node=state)`` for a root."""
    if not parents:
        return f"P({node}={state})"
    given = ",".join(f"{p}={s}" for p, s in zip(parents, when))
    return f"P({node}={state}|{given})"


def leak_parameter_id(node: str) -> str:
    """Id of a noisy-OR leak: ``leak(node)``."""
    return f"leak({node})"


def link_parameter_id(node: str, parent: str, parent_state: str) -> str:
    """Id of a noisy-OR link: ``link(node<-parent=state)``."""
    return f"link({node}<-{parent}={parent_state})"


def _where(location: str, fallback: str) -> str:
    return location or fallback


def _check_parameter(parameter: Parameter, where: str, problems: list[str]) -> None:
    for attr in ("value", "low", "high"):
        x = getattr(parameter, attr)
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            problems.append(f"{where}.{attr}: got {x!r}; expected a number.")
            return
    value, low, high = parameter.value, parameter.low, parameter.high
    for attr, x in (("value", value), ("range", low), ("range", high)):
        if math.isnan(x) or not 0.0 <= x <= 1.0:
            problems.append(f"{where}.{attr}: got {x!r}; expected a probability in [0, 1].")
            return
    if low > high:
        problems.append(f"{where}.range: got [{low}, {high}]; expected low <= high.")
    elif not low <= value <= high:
        problems.append(f"{where}.value: got {value}, outside its own range [{low}, {high}]; "
                        "expected low <= value <= high.")
    if parameter.basis not in BASES:
        problems.append(f"{where}.basis: got {parameter.basis!r}; expected one of {one_of(BASES)}.")


def find_cycle(spec: Spec) -> list[str] | None:
    """A directed cycle among known nodes as a list of names (first repeated last), or None.

    Depth-first search with an explicit stack: no recursion, so any depth of network works.
    """
    colour: dict[str, int] = {}
    for start in spec.nodes:
        if start in colour:
            continue
        colour[start] = 1
        path = [start]
        pending = [iter(spec.nodes[start].parents)]
        while pending:
            parent = next((p for p in pending[-1] if p in spec.nodes and colour.get(p) != 2), None)
            if parent is None:
                colour[path.pop()] = 2
                pending.pop()
            elif colour.get(parent) == 1:
                # found child -> parent; say it as parent -> child
                return (path[path.index(parent):] + [parent])[::-1]
            else:
                colour[parent] = 1
                path.append(parent)
                pending.append(iter(spec.nodes[parent].parents))
    return None


def topological_order(spec: Spec) -> list[str]:
    """Node names with every parent before its children (stable w.r.t. definition order).

    The order of repeated sweeps through the definition order, each placing every node whose
    parents are already placed, computed in one pass: a node's sweep is that of its latest
    parent (one more when the parent is defined after it).
    """
    rank = {name: i for i, name in enumerate(spec.nodes)}
    children: dict[str, list[str]] = {name: [] for name in spec.nodes}
    waiting = {}
    for name, node in spec.nodes.items():
        known = [p for p in node.parents if p in spec.nodes]
        waiting[name] = len(known) if len(known) == len(node.parents) else -1
        for parent in known:
            children[parent].append(name)
    sweep = {name: 0 for name in spec.nodes}
    ready = [name for name, count in waiting.items() if count == 0]
    placed = []
    while ready:
        name = ready.pop()
        placed.append(name)
        for child in children[name]:
            sweep[child] = max(sweep[child], sweep[name] + (rank[name] > rank[child]))
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    if len(placed) < len(spec.nodes):
        cycle = find_cycle(spec)
        remaining = [name for name in spec.nodes if name not in set(placed)]
        raise SpecError(f"The network has a cycle: {' -> '.join(cycle or remaining)}; "
                        "expected a directed acyclic graph.")
    return sorted(placed, key=lambda name: (sweep[name], rank[name]))


def validate(spec: Spec) -> list[str]:
    """Every problem in ``spec``, one sentence each (empty when the spec is valid).

    Checks states, parents, cycles, table sizes (at most :data:`MAX_TABLE_ENTRIES`), every
    parameter (a probability, inside its own range), table rows (each parent configuration
    exactly once, rows summing to 1 within :data:`ROW_SUM_TOLERANCE`), noisy-OR links, and
    the ``[meta]`` keys that name nodes.
    """
    problems: list[str] = []
    broken = {name for name, node in spec.nodes.items() if _validate_header(spec, node, problems)}
    problems.extend(_cycle_problems(spec))
    for name, node in spec.nodes.items():
        _validate_cpd(spec, name, node, broken, problems)
    problems.extend(_validate_meta(spec))
    problems.extend(_published_conditional_problems(spec))
    problems.extend(_published_asymptomatic_problems(spec))
    problems.extend(_published_prevalence_problems(spec))
    return problems


def _cycle_problems(spec: Spec) -> list[str]:
    """The one-sentence problem naming a cycle in ``spec``, or nothing when it is acyclic."""
    cycle = find_cycle(spec)
    if not cycle:
        return []
    first = spec.nodes[cycle[0]]
    return [f"{_where(first.location, 'nodes.' + cycle[0])}.parents: the network has a cycle "
            f"{' -> '.join(cycle)}; expected a directed acyclic graph."]


def _validate_cpd(spec: Spec, name: str, node: Node, broken: set[str], problems: list[str]) -> None:
    """Append the problems of node ``name``'s conditional distribution to ``problems``."""
    # ``name`` is the key in ``spec.nodes``: the one lookups use, even where ``node.name`` disagrees
    if name in broken or any(p in broken for p in node.parents) or _too_large(spec, node, problems):
        # the table cannot be read against broken states or parents; its numbers still can
        for parameter in _node_parameters(node):
            _check_parameter(parameter, _where(parameter.location, f"nodes.{name}: {parameter.id}"), problems)
    elif isinstance(node.cpd, TableCPD):
        problems.extend(_validate_table(spec, node))
    elif isinstance(node.cpd, NoisyOrCPD):
        problems.extend(_validate_noisy_or(spec, node))
    else:
        problems.append(f"{_where(node.location, 'nodes.' + name)}.cpd: got {node.cpd!r}; "
                        "expected \"table\" or \"noisy_or\".")


def _state_problem(spec: Spec, node: str, state: object, where: str) -> list[str]:
    """The problem sentence when ``state`` is not one of the known ``node``'s states."""
    if state in spec.nodes[node].states:
        return []
    return [f"{where}: got {state!r}; expected one of {one_of(spec.nodes[node].states)}."]


def _published_conditional_problems(spec: Spec) -> list[str]:
    """Problems of the ``published_conditional`` entries: unknown nodes or states."""
    problems: list[str] = []
    for entry in spec.published_conditional:
        where = entry.location or f"published_conditional ({entry.node})"
        if entry.node not in spec.nodes:
            problems.append(f"{where}.node: unknown node {entry.node!r}; expected one of {one_of(spec.nodes)}.")
        else:
            problems.extend(_state_problem(spec, entry.node, entry.state, f"{where}.state"))
        for name, state in entry.given.items():
            if name not in spec.nodes:
                problems.append(f"{where}.given.{name}: unknown node; expected one of {one_of(spec.nodes)}.")
            else:
                problems.extend(_state_problem(spec, name, state, f"{where}.given.{name}"))
    return problems


def _published_asymptomatic_problems(spec: Spec) -> list[str]:
    """Problems of the ``published_asymptomatic`` entries: unknown nodes."""
    problems: list[str] = []
    for entry in spec.published_asymptomatic.values():
        where = entry.location or f"published_asymptomatic.{entry.node}"
        if entry.node not in spec.nodes:
            problems.append(f"{where}: unknown node {entry.node!r}; expected one of {one_of(spec.nodes)}.")
    return problems


def _published_prevalence_problems(spec: Spec) -> list[str]:
    """Problems of the ``published_prevalence`` entries: unknown nodes or states."""
    problems: list[str] = []
    for prevalence in spec.published_prevalence.values():
        where = _where(prevalence.location, f"published_prevalence.{prevalence.node}")
        if prevalence.node not in spec.nodes:
            problems.append(f"{where}: unknown node {prevalence.node!r}; expected one of {one_of(spec.nodes)}.")
        else:
            problems.extend(_state_problem(spec, prevalence.node, prevalence.state, f"{where}.state"))
    return problems


def _validate_header(spec: Spec, node: Node, problems: list[str]) -> bool:
    """Check a node's name, states and parents; True when any is broken."""
    before = len(problems)
    name = node.name
    where = _where(node.location, f"nodes.{name}")
    if not _NAME.match(name):
        problems.append(f"{where}: node name {name!r} is not an identifier; "
                        "expected letters, digits and underscores.")
    if len(node.states) < 2:
        got = "an empty list" if not node.states else f"only {node.states[0]!r}"
        problems.append(f"{where}.states: got {got}; expected at least two states.")
    duplicates = sorted(state for state, count in Counter(node.states).items() if count > 1)
    if duplicates:
        problems.append(f"{where}.states: state {duplicates[0]!r} appears more than once; "
                        "expected distinct states.")
    problems.extend(f"{where}.states: got {state!r}; expected non-empty strings."
                    for state in node.states if not isinstance(state, str) or not state)
    for parent, count in Counter(node.parents).items():
        if count > 1:
            problems.append(f"{where}.parents: {parent!r} is listed twice; expected distinct parents.")
        if parent not in spec.nodes:
            problems.append(f"{where}.parents: unknown parent {parent!r}; expected one of the nodes "
                            f"{one_of(spec.nodes)}.")
        elif parent == name:
            problems.append(f"{where}.parents: {name!r} is its own parent; expected other nodes.")
    return len(problems) > before


def table_size(spec: Spec, name: str) -> int:
    """Number of entries of ``name``'s CPD, ``prod(parent cards) * n_states`` (exact, however large)."""
    node = spec.nodes[name]
    return math.prod(len(spec.nodes[p].states) for p in node.parents) * len(node.states)


def size_error(where: str, what: str, n_entries: int) -> str:
    """The sentence refusing a table of ``n_entries`` (more than :data:`MAX_TABLE_ENTRIES`)."""
    return (f"{where}: {what} has {n_entries:,} entries ({_bytes(n_entries * 8)} as float64); expected at most "
            f"{MAX_TABLE_ENTRIES:,} ({_bytes(MAX_TABLE_ENTRIES * 8)}); give the node fewer parents or states, or "
            "add intermediate nodes that summarise some of its parents.")


def _bytes(n_bytes: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n_bytes < 1024 or unit == "PiB":
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.3g} {unit}"
        n_bytes /= 1024
    return ""


def _too_large(spec: Spec, node: Node, problems: list[str]) -> bool:
    n_entries = table_size(spec, node.name)
    if n_entries <= MAX_TABLE_ENTRIES:
        return False
    what = f"its table over {len(node.parents)} parent(s) and {len(node.states)} states"
    problems.append(size_error(_where(node.location, f"nodes.{node.name}"), what, n_entries))
    return True


def _validate_meta(spec: Spec) -> list[str]:
    problems = []
    for key in ("observable", "targets", "symptoms"):
        for name in spec.meta.get(key, ()):
            if name not in spec.nodes:
                problems.append(f"meta.{key}: unknown node {name!r}; expected node names among "
                                f"{one_of(spec.nodes)}.")
    target = spec.meta.get("sensitivity_target")
    if target is not None:
        node, _, state = str(target).partition("=")
        if node not in spec.nodes or state not in spec.nodes[node].states:
            problems.append(f"meta.sensitivity_target: got {target!r}; expected \"node=state\" naming a node and "
                            "one of its states.")
    return problems


def check(spec: Spec) -> Spec:
    """Return ``spec`` unchanged if valid; raise :class:`SpecError` listing every problem."""
    problems = validate(spec)
    if problems:
        raise SpecError(problems)
    return spec


def _validate_table(spec: Spec, node: Node) -> list[str]:
    problems: list[str] = []
    where = _where(node.location, f"nodes.{node.name}")
    parent_states = [frozenset(spec.nodes[p].states) for p in node.parents]
    seen: dict[tuple[str, ...], int] = {}
    for i, row in enumerate(node.cpd.rows):
        row_where = _where(row.location, f"{where}.table[{i}]")
        if _row_configuration_problems(spec, node, row, row_where, parent_states, seen, problems):
            continue
        seen[row.when] = i
        _row_probability_problems(node, row, row_where, problems)
    if len(seen) < math.prod(len(states) for states in parent_states):
        for config in itertools.product(*(spec.nodes[p].states for p in node.parents)):
            if config not in seen:
                problems.append(f"{where}.table: no row for parent configuration {_config(node, config)}; expected "
                                "one row per configuration of the parents.")
    return problems


def _row_configuration_problems(spec: Spec, node: Node, row: TableRow, row_where: str,
                                parent_states: list[frozenset], seen: Mapping, problems: list[str]) -> bool:
    """Check a row's ``when``; True when the row cannot be read."""
    if len(row.when) != len(node.parents):
        problems.append(f"{row_where}.when: names {len(row.when)} parent state(s); expected one for each "
                        f"parent: {one_of(node.parents) or '(none: a root takes when = {})'}.")
        return True
    bad = [(p, s) for p, s, states in zip(node.parents, row.when, parent_states) if s not in states]
    for parent, state in bad:
        problems.append(f"{row_where}.when.{parent}: got {state!r}; expected one of "
                        f"{one_of(spec.nodes[parent].states)}.")
    if bad:
        return True
    if row.when in seen:
        problems.append(f"{row_where}.when: duplicate parent configuration {_config(node, row.when)} "
                        f"(also table[{seen[row.when]}]); expected each configuration once.")
        return True
    return False


def _row_probability_problems(node: Node, row: TableRow, row_where: str, problems: list[str]) -> None:
    """Check a row's entries: every state once, at most one remainder, valid numbers, a sum of 1."""
    before = len(problems)
    _row_state_problems(node, row, row_where, problems)
    states = frozenset(node.states)
    explicit = [(s, p) for s, p in row.probability.items() if p is not None and s in states]
    for state, parameter in explicit:
        _check_parameter(parameter, _where(parameter.location, f"{row_where}.probability.{state}"), problems)
    if len(problems) > before:
        return
    total = math.fsum(p.value for _, p in explicit)
    remainders = [s for s, p in row.probability.items() if p is None]
    if remainders and total > 1.0 + ROW_SUM_TOLERANCE:
        problems.append(f"{row_where}.probability: explicit entries sum to {total:.6g}, leaving a negative "
                        f"remainder for {remainders[0]!r}; expected a sum <= 1 (tolerance {ROW_SUM_TOLERANCE:g}).")
    elif not remainders and abs(total - 1.0) > ROW_SUM_TOLERANCE:
        problems.append(f"{row_where}.probability: the row sums to {total:.9g}; expected 1 within "
                        f"{ROW_SUM_TOLERANCE:g} (or mark one state \"remainder\").")


def _row_state_problems(node: Node, row: TableRow, row_where: str, problems: list[str]) -> None:
    states = frozenset(node.states)
    for state in row.probability:
        if state not in states:
            problems.append(f"{row_where}.probability.{state}: unknown state {state!r}; expected one of "
                            f"{one_of(node.states)}.")
    missing = [s for s in node.states if s not in row.probability]
    if missing:
        problems.append(f"{row_where}.probability: no entry for state(s) {one_of(missing)}; expected every "
                        "state, one of which may be \"remainder\".")
    remainders = [s for s, p in row.probability.items() if p is None]
    if len(remainders) > 1:
        problems.append(f"{row_where}.probability: states {one_of(remainders)} are all \"remainder\"; "
                        "expected at most one.")


def _config(node: Node, when: tuple[str, ...]) -> str:
    if not node.parents:
        return "{} (root)"
    return "{" + ", ".join(f"{p} = {s}" for p, s in zip(node.parents, when)) + "}"


def _validate_noisy_or(spec: Spec, node: Node) -> list[str]:
    problems: list[str] = []
    where = _where(node.location, f"nodes.{node.name}")
    if len(node.states) != 2:
        problems.append(f"{where}.states: a noisy_or node has exactly two states (off, on); got "
                        f"{len(node.states)} ({one_of(node.states)}); use cpd = \"table\" instead.")
    _check_parameter(node.cpd.leak, _where(node.cpd.leak.location, f"{where}.leak"), problems)
    for parent, by_state in node.cpd.links.items():
        if parent not in node.parents:
            problems.append(f"{where}.links.{parent}: {parent!r} is not a parent of {node.name!r}; expected one "
                            f"of {one_of(node.parents)}.")
            continue
        states = spec.nodes[parent].states
        for state, parameter in by_state.items():
            link_where = _where(parameter.location, f"{where}.links.{parent}.{state}")
            if state not in states:
                problems.append(f"{link_where}: unknown state {state!r} of {parent!r}; expected one of "
                                f"{one_of(states)}.")
            else:
                _check_parameter(parameter, link_where, problems)
        if parent in spec.nodes and set(spec.nodes[parent].states) <= set(by_state):
            # the leak is the probability with every parent in a state without a link
            problems.append(f"{where}.links.{parent}: every state of {parent!r} has a link; expected at least one "
                            "state without a link (the reference state the leak refers to, usually the first).")
    for parent in node.parents:
        if parent not in node.cpd.links:
            problems.append(f"{where}.links: no link for parent {parent!r}; expected links.{parent}.STATE for "
                            f"its active state(s) {one_of(spec.nodes[parent].states[1:])}.")
    return problems


def probability_table(spec: Spec, name: str, values: Mapping[str, Any] | None = None) -> np.ndarray:
    """The CPD of ``name`` as an array ``[*parent_cards, n_states]`` (last axis sums to 1).

    The one place where parameters become probabilities. A table row takes its explicit
    entries; a ``remainder`` state takes what is left; a row whose explicit entries sum
    above 1 (or, without a remainder state, to anything but 1) is rescaled to sum to 1. A
    noisy-OR gives ``P(first state | u) = (1 - leak) * prod_j (1 - link_j(u_j))``.

    Parameters
    ----------
    spec : Spec
    name : str
        The node.
    values : mapping, optional
        Parameter id -> a value or a 1-D array of values, replacing the spec's values (ids of
        other nodes are ignored). Given, the result has a leading axis over the values,
        ``[n_values, *parent_cards, n_states]`` (``n_values`` = 1 when every value is a
        number): parameter draws or a grid of one parameter become tables in one call.

    Raises
    ------
    SpecError
        When the table would have more than :data:`MAX_TABLE_ENTRIES` entries (checked before
        anything is allocated).

    Examples
    --------
    >>> from bayescramp.priors import load_spec
    >>> spec = load_spec()
    >>> table = probability_table(spec, "diuretic")     # [age_group, diuretic]
    >>> table.shape
    (3, 5)
    >>> table[2].round(4).tolist()                      # age_group = 65_plus
    [0.665, 0.22, 0.08, 0.015, 0.02]
    >>> grid = {"P(diuretic=loop|age_group=65_plus)": np.array([0.0, 0.1])}
    >>> probability_table(spec, "diuretic", grid)[:, 2, 2].tolist()     # [value, age_group, diuretic]
    [0.0, 0.1]
    """
    node = spec.nodes[name]
    n_entries = table_size(spec, name)
    if n_entries > MAX_TABLE_ENTRIES:
        what = f"its table over {len(node.parents)} parent(s) and {len(node.states)} states"
        raise SpecError(size_error(_where(node.location, f"nodes.{name}"), what, n_entries))
    given = {} if values is None else values
    own = {p.id: np.asarray(given[p.id], dtype=float).reshape(-1) for p in _node_parameters(node) if p.id in given}
    n_values = max((len(v) for v in own.values()), default=1)
    parent_cards = tuple(len(spec.nodes[p].states) for p in node.parents)
    if isinstance(node.cpd, TableCPD):
        table = _table_cpd(spec, node, parent_cards, own, n_values)
    else:
        table = _noisy_or_cpd(spec, node, parent_cards, own, n_values)
    return table if values is not None else table[0]


def _table_cpd(spec: Spec, node: Node, parent_cards: tuple[int, ...], own: Mapping[str, np.ndarray],
               n_values: int) -> np.ndarray:
    """Explicit table rows, vectorised over the rows and over ``n_values`` parameter values."""
    k = len(node.states)
    state_index = {s: j for j, s in enumerate(node.states)}
    parent_index = [{s: i for i, s in enumerate(spec.nodes[p].states)} for p in node.parents]
    cells, columns, entries, remainder_cells, remainder_columns = [], [], [], [], []
    for row in node.cpd.rows:
        config = 0
        for lookup, state, card in zip(parent_index, row.when, parent_cards):
            config = config * card + lookup[state]
        for state, parameter in row.probability.items():
            if parameter is None:
                remainder_cells.append(config)
                remainder_columns.append(state_index[state])
            else:
                cells.append(config)
                columns.append(state_index[state])
                entries.append(own.get(parameter.id, parameter.value))
    n_configs = math.prod(parent_cards)
    values = np.empty((len(entries), n_values))
    for e, entry in enumerate(entries):
        values[e] = entry
    cells_array = np.asarray(cells, dtype=np.int64)
    totals = np.zeros((n_configs, n_values))
    np.add.at(totals, cells_array, values)
    has_remainder = np.zeros(n_configs, dtype=bool)
    has_remainder[remainder_cells] = True
    # complete a row with its remainder when the entries leave room; rescale it otherwise
    rescale = (totals > 1.0) | (~has_remainder[:, None] & (totals > 0))
    scale = np.where(rescale, 1.0 / np.where(totals > 0, totals, 1.0), 1.0)
    table = np.zeros((n_values, n_configs, k))
    table[:, cells_array, np.asarray(columns, dtype=np.int64)] = (values * scale[cells_array]).T
    remainder_cells_array = np.asarray(remainder_cells, dtype=np.int64)
    table[:, remainder_cells_array, np.asarray(remainder_columns, dtype=np.int64)] = np.maximum(
        0.0, 1.0 - totals * scale)[remainder_cells_array].T
    return table.reshape((n_values, *parent_cards, k))


def _noisy_or_cpd(spec: Spec, node: Node, parent_cards: tuple[int, ...], own: Mapping[str, np.ndarray],
                  n_values: int) -> np.ndarray:
    """A leaky noisy-OR, vectorised over ``n_values`` parameter values."""
    cpd: NoisyOrCPD = node.cpd
    off = np.broadcast_to(1.0 - np.asarray(own.get(cpd.leak.id, cpd.leak.value), dtype=float).reshape(-1, 1),
                          (n_values, 1)).reshape((n_values,) + (1,) * len(parent_cards))
    for axis, parent in enumerate(node.parents):
        states = {s: i for i, s in enumerate(spec.nodes[parent].states)}
        factor = np.ones((n_values, parent_cards[axis]))
        for state, link in cpd.links.get(parent, {}).items():
            factor[:, states[state]] = 1.0 - own.get(link.id, link.value)
        shape = [n_values] + [1] * len(parent_cards)
        shape[axis + 1] = parent_cards[axis]
        off = off * factor.reshape(shape)
    off = np.broadcast_to(off, (n_values, *parent_cards))
    return np.stack([off, 1.0 - off], axis=-1)


def _node_parameters(node: Node) -> list[Parameter]:
    if isinstance(node.cpd, TableCPD):
        return [p for row in node.cpd.rows for p in row.probability.values() if p is not None]
    return [node.cpd.leak] + [p for by_state in node.cpd.links.values() for p in by_state.values()]


def silent_share(spec: Spec, node: str, state: str | None = None) -> float:
    """Share of people with ``node = state`` who have none of the symptoms it causes.

    The product of ``1 - link`` over the noisy-OR links from ``node = state`` (default: its last
    state, e.g. ``present``) into the symptom nodes: the prior file's ``meta.symptoms``, else
    ``meta.observable``. Each link is the probability that the cause alone produces the symptom,
    so the product is the chance it produces none of them (noisy-OR causes act independently).

    Examples
    --------
    >>> from bayescramp.priors import load_spec
    >>> 0.5 < silent_share(load_spec(), "calcium_deficiency") < 0.9
    True
    """
    state = spec.nodes[node].states[-1] if state is None else state
    symptoms = spec.meta.get("symptoms") or spec.meta.get("observable", ())
    share = 1.0
    for child in symptoms:
        cpd = spec.nodes[child].cpd
        if isinstance(cpd, NoisyOrCPD) and state in cpd.links.get(node, {}):
            share *= 1.0 - cpd.links[node][state].value
    return share


def parameters_by_id(spec: Spec) -> dict[str, tuple[str, Parameter]]:
    """Every free parameter: ``{id: (node name, Parameter)}`` in node definition order."""
    return {parameter.id: (name, parameter) for name, node in spec.nodes.items()
            for parameter in _node_parameters(node)}


def with_parameters(spec: Spec, values: Mapping[str, float]) -> Spec:
    """A copy of ``spec`` with parameters set by id.

    A table entry's siblings in the same row co-vary proportionally so the row still sums
    to 1 (a ``remainder`` state follows automatically); a noisy-OR leak or link is
    replaced on its own (the noisy-OR keeps each column normalised by construction).
    The new value may lie outside the parameter's configured range; the range moves to
    include it, so the copy stays valid.
    """
    if not isinstance(values, Mapping):
        raise InputError(f"with_parameters: got {type(values).__name__}; expected a mapping parameter id -> value "
                        "(ids from Model.parameters()['id']).")
    known = parameters_by_id(spec)
    unknown = [k for k in values if k not in known]
    if unknown:
        raise SpecError(f"with_parameters: unknown parameter id {unknown[0]!r}; expected an id from "
                        "Model.parameters()['id'].")
    for key, value in values.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
            raise SpecError(f"with_parameters: parameter {key!r} got {value!r}; expected a probability in [0, 1].")
    nodes = dict(spec.nodes)
    touched = {known[k][0] for k in values}
    for name in touched:
        node = nodes[name]
        if isinstance(node.cpd, TableCPD):
            rows = tuple(_covary_row(row, values) for row in node.cpd.rows)
            nodes[name] = replace(node, cpd=TableCPD(rows=rows))
        else:
            leak = _set(node.cpd.leak, values.get(node.cpd.leak.id))
            links = {p: {s: _set(q, values.get(q.id)) for s, q in by_state.items()}
                     for p, by_state in node.cpd.links.items()}
            nodes[name] = replace(node, cpd=NoisyOrCPD(leak=leak, links=links))
    return replace(spec, nodes=nodes)


def _set(parameter: Parameter, value: float | None) -> Parameter:
    if value is None:
        return parameter
    value = float(value)
    return replace(parameter, value=value, low=min(parameter.low, value), high=max(parameter.high, value))


def _covary_row(row: TableRow, values: Mapping[str, float]) -> TableRow:
    changed = [p for p in row.probability.values() if p is not None and p.id in values]
    if not changed:
        return row
    new_mass = math.fsum(float(values[p.id]) for p in changed)
    if new_mass > 1.0 + ROW_SUM_TOLERANCE:
        ids = ", ".join(p.id for p in changed)
        raise SpecError(f"with_parameters: {ids} are entries of one table row and were set to sum to "
                        f"{new_mass:.6g}; expected a sum <= 1.")
    new_values = covaried_values(row, values)
    probability = {state: p if p is None else _set(p, float(new_values[p.id][0]))
                   for state, p in row.probability.items()}
    return replace(row, probability=probability)


def covaried_values(row: TableRow, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Every explicit entry of a table row after setting some of them, the rest co-varying proportionally.

    The entries named in ``values`` (id -> a value or a 1-D array of values) take those values;
    the row's other entries (and its remainder) share what is left in proportion to their old
    values, or equally when they all had probability 0. The rule of :func:`with_parameters`,
    vectorised so sensitivity analysis can evaluate it on arrays.

    Returns
    -------
    dict
        Parameter id -> ``[n_values]`` for every explicit entry of the row.

    Examples
    --------
    >>> from bayescramp.priors import load_spec
    >>> row = load_spec().nodes["diuretic"].cpd.rows[2]        # age_group = 65_plus
    >>> new = covaried_values(row, {"P(diuretic=loop|age_group=65_plus)": 0.0})
    >>> list(new)[:2]
    ['P(diuretic=thiazide|age_group=65_plus)', 'P(diuretic=loop|age_group=65_plus)']
    >>> [round(float(v[0]), 4) for v in new.values()]    # the others share the loop's 0.08: x 1/0.92
    [0.2391, 0.0, 0.0163, 0.0217]
    """
    changed = {s: p for s, p in row.probability.items() if p is not None and p.id in values}
    new = {p.id: np.asarray(values[p.id], dtype=float).reshape(-1) for p in changed.values()}
    new_mass = sum(new.values()) if new else np.zeros(1)
    other_mass = 1.0 - math.fsum(p.value for p in changed.values())
    n_others = len(row.probability) - len(changed)
    result = {}
    for state, parameter in row.probability.items():
        if parameter is None:
            continue
        if state in changed:
            result[parameter.id] = new[parameter.id] * np.ones_like(new_mass)
        elif other_mass > 0:
            result[parameter.id] = np.clip(parameter.value * (1.0 - new_mass) / other_mass, 0.0, 1.0)
        else:
            # every other state had probability 0: share the freed mass equally
            # (a remainder state, if any, takes its equal share automatically)
            result[parameter.id] = np.clip((1.0 - new_mass) / n_others, 0.0, 1.0)
    return result


@dataclass(frozen=True)
class ModelInfo:
    """How a model is used when the caller does not say: the priors file's ``[meta]``, with fallbacks.

    The one accessor for model knowledge; analyses never guess from node names. Keys read:
    ``targets`` (nodes reported by default), ``positive_states`` (for a two-state node, the
    state reported as ``p_<node>``, first match), ``sensitivity_target`` (``"node=state"``),
    ``observable`` (what a survey observes). Fallbacks for networks without them (e.g. BIF
    files): observable nodes are the roots and leaves that are not targets; targets are the
    other (hidden) nodes, less any the data observes; no state is positive (every state gets
    its own column); the sensitivity target is the first default target, at its positive
    state, else its first state.

    Examples
    --------
    >>> info = ModelInfo.from_meta({}, ["a", "b", "c"], {"a": (), "b": ("a",), "c": ("b",)},
    ...                            {"a": ("x", "y"), "b": ("no", "yes"), "c": ("no", "yes")})
    >>> info.observable, info.default_targets(), info.default_sensitivity_target()
    (('a', 'c'), ['b'], ('b', 'no'))
    """

    names: tuple[str, ...]
    states: Mapping[str, tuple[str, ...]]
    targets: tuple[str, ...]
    positive_states: tuple[str, ...]
    observable: tuple[str, ...]
    hidden: tuple[str, ...]
    sensitivity_target: tuple[str, str] | None

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], names: Sequence[str], parents: Mapping[str, Sequence[str]],
                  states: Mapping[str, Sequence[str]]) -> "ModelInfo":
        """Resolve ``meta`` against a network's structure (node names, parents and states)."""
        names = tuple(names)
        targets = tuple(meta.get("targets", ()))
        has_children = {p for n in names for p in parents[n]}
        if meta.get("observable"):
            observable = tuple(n for n in names if n in set(meta["observable"]))
        else:
            observable = tuple(n for n in names if n not in set(targets)
                               and (not parents[n] or n not in has_children))
        hidden = tuple(n for n in names if n not in set(observable))
        target = meta.get("sensitivity_target")
        return cls(names=names, states={n: tuple(states[n]) for n in names}, targets=targets,
                   positive_states=tuple(meta.get("positive_states", ())), observable=observable, hidden=hidden,
                   sensitivity_target=tuple(str(target).split("=", 1)) if target else None)

    def default_targets(self, observed: Sequence[str] = ()) -> list[str]:
        """Nodes reported when no targets are given: ``meta.targets``, else the hidden nodes not observed.

        (Every node not observed when no node is hidden, e.g. a network of roots and leaves.)
        """
        if self.targets:
            return list(self.targets)
        return ([n for n in self.hidden if n not in set(observed)]
                or [n for n in self.names if n not in set(observed)])

    def positive_state(self, node: str) -> str | None:
        """The state reported as ``p_<node>`` for a two-state node (None: one column per state)."""
        states = self.states[node]
        if len(states) != 2:
            return None
        return next((s for s in self.positive_states if s in states), None)

    def default_sensitivity_target(self) -> tuple[str, str]:
        """``meta.sensitivity_target``, else the first default target not observable, at its positive state."""
        if self.sensitivity_target is not None:
            return self.sensitivity_target
        candidates = self.default_targets(self.observable) or list(self.names)
        node = candidates[0]
        return node, self.positive_state(node) or self.states[node][0]


def model_info(spec: Spec) -> ModelInfo:
    """The :class:`ModelInfo` of a spec (its ``[meta]`` resolved against its nodes)."""
    names = topological_order(spec)
    return ModelInfo.from_meta(spec.meta, names, {n: spec.nodes[n].parents for n in names},
                               {n: spec.nodes[n].states for n in names})


def replace_parameters(spec: Spec, replacements: Mapping[str, Parameter]) -> Spec:
    """A copy of ``spec`` with whole parameters (value, range, basis, source, ...) replaced by id.

    Unlike :func:`with_parameters` nothing co-varies: a table row's other entries stay as
    they are (a ``remainder`` state follows automatically), so the caller keeps rows summing
    to 1. Ids not in ``spec`` are ignored; check them with :func:`parameters_by_id` first.

    Examples
    --------
    >>> from bayescramp.priors import load_spec
    >>> spec = load_spec()
    >>> old = parameters_by_id(spec)["P(diuretic=thiazide|age_group=40_64)"][1]
    >>> new = replace_parameters(spec, {old.id: replace(old, value=0.1, basis="fitted")})
    >>> parameters_by_id(new)["P(diuretic=thiazide|age_group=40_64)"][1].basis
    'fitted'
    """
    if not replacements:
        return spec
    nodes = dict(spec.nodes)
    for name, node in spec.nodes.items():
        if isinstance(node.cpd, TableCPD):
            rows = tuple(
                replace(row, probability={s: (replacements.get(p.id, p) if p is not None else None)
                                          for s, p in row.probability.items()})
                for row in node.cpd.rows)
            nodes[name] = replace(node, cpd=TableCPD(rows=rows))
        else:
            leak = replacements.get(node.cpd.leak.id, node.cpd.leak)
            links = {parent: {s: replacements.get(p.id, p) for s, p in by_state.items()}
                     for parent, by_state in node.cpd.links.items()}
            nodes[name] = replace(node, cpd=NoisyOrCPD(leak=leak, links=links))
    return replace(spec, nodes=nodes)

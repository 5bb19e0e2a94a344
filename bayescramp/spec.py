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
from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np

from ._errors import SpecError, one_of

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
    "parameter_kind",
]

#: How far a fully explicit table row may stray from summing to 1.
ROW_SUM_TOLERANCE = 1e-6

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


def parameter_kind(parameter_id: str) -> tuple[str, str, str]:
    """``(kind, configuration, state)`` of a parameter id.

    The kind is ``table``, ``leak`` or ``link``; the configuration is the named parent
    configuration (``parent=state`` for a link); the state is a table entry's.

    Examples
    --------
    >>> parameter_kind("P(anemia=present|iron_deficiency=present)")
    ('table', 'iron_deficiency=present', 'present')
    >>> parameter_kind("link(fatigue<-anemia=present)")
    ('link', 'anemia=present', '')
    """
    if parameter_id.startswith("leak("):
        return "leak", "", ""
    if parameter_id.startswith("link("):
        return "link", parameter_id[len("link("):-1].split("<-", 1)[1], ""
    head, _, given = parameter_id[len("P("):-1].partition("|")
    return "table", given, head.split("=", 1)[1]


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
    """A directed cycle among known nodes as a list of names (first repeated last), or None."""
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        colour[name] = 1
        stack.append(name)
        for parent in spec.nodes[name].parents:
            if parent not in spec.nodes:
                continue
            if colour.get(parent) == 1:
                return stack[stack.index(parent):] + [parent]
            if parent not in colour:
                found = visit(parent)
                if found:
                    return found
        stack.pop()
        colour[name] = 2
        return None

    for name in spec.nodes:
        if name not in colour:
            found = visit(name)
            if found:
                # reported child -> parent; say it as parent -> child
                return found[::-1]
    return None


def topological_order(spec: Spec) -> list[str]:
    """Node names with every parent before its children (stable w.r.t. definition order)."""
    order: list[str] = []
    placed: set[str] = set()
    remaining = list(spec.nodes)
    while remaining:
        progressed = False
        for name in list(remaining):
            if all(p in placed for p in spec.nodes[name].parents):
                order.append(name)
                placed.add(name)
                remaining.remove(name)
                progressed = True
        if not progressed:
            cycle = find_cycle(spec)
            raise SpecError(f"The network has a cycle: {' -> '.join(cycle or remaining)}; "
                            "expected a directed acyclic graph.")
    return order


def validate(spec: Spec) -> list[str]:
    """Every problem in ``spec``, one sentence each (empty when the spec is valid).

    Checks states, parents, cycles, every parameter (a probability, inside its own range),
    table rows (each parent configuration exactly once, rows summing to 1 within
    :data:`ROW_SUM_TOLERANCE`) and noisy-OR links.
    """
    problems: list[str] = []
    broken: set[str] = set()
    for name, node in spec.nodes.items():
        before = len(problems)
        where = _where(node.location, f"nodes.{name}")
        if not _NAME.match(name):
            problems.append(f"{where}: node name {name!r} is not an identifier; "
                            "expected letters, digits and underscores.")
        if len(node.states) == 0:
            problems.append(f"{where}.states: got an empty list; expected at least two states.")
        elif len(node.states) == 1:
            problems.append(f"{where}.states: got only {node.states[0]!r}; expected at least two states.")
        duplicates = sorted({s for s in node.states if node.states.count(s) > 1})
        if duplicates:
            problems.append(f"{where}.states: state {duplicates[0]!r} appears more than once; "
                            "expected distinct states.")
        for state in node.states:
            if not isinstance(state, str) or not state:
                problems.append(f"{where}.states: got {state!r}; expected non-empty strings.")
        seen_parents: set[str] = set()
        for parent in node.parents:
            if parent in seen_parents:
                problems.append(f"{where}.parents: {parent!r} is listed twice; expected distinct parents.")
            seen_parents.add(parent)
            if parent not in spec.nodes:
                problems.append(f"{where}.parents: unknown parent {parent!r}; expected one of the nodes "
                                f"{one_of(spec.nodes)}.")
            elif parent == name:
                problems.append(f"{where}.parents: {name!r} is its own parent; expected other nodes.")
        if len(problems) > before:
            broken.add(name)
    cycle = find_cycle(spec)
    if cycle:
        first = spec.nodes[cycle[0]]
        problems.append(f"{_where(first.location, 'nodes.' + cycle[0])}.parents: the network has a cycle "
                        f"{' -> '.join(cycle)}; expected a directed acyclic graph.")
    for name, node in spec.nodes.items():
        if name in broken or any(p in broken for p in node.parents):
            # the table cannot be read against broken states or parents; its numbers still can
            for parameter in _node_parameters(node):
                _check_parameter(parameter, _where(parameter.location, f"nodes.{name}: {parameter.id}"), problems)
            continue
        if isinstance(node.cpd, TableCPD):
            problems.extend(_validate_table(spec, node))
        elif isinstance(node.cpd, NoisyOrCPD):
            problems.extend(_validate_noisy_or(spec, node))
        else:
            problems.append(f"{_where(node.location, 'nodes.' + name)}.cpd: got {node.cpd!r}; "
                            "expected \"table\" or \"noisy_or\".")
    for key in ("observable", "targets", "symptoms"):
        for name in spec.meta.get(key, ()):
            if name not in spec.nodes:
                problems.append(f"meta.{key}: unknown node {name!r}; expected node names among {one_of(spec.nodes)}.")
    for entry in spec.published_conditional:
        where = entry.location or f"published_conditional ({entry.node})"
        if entry.node not in spec.nodes:
            problems.append(f"{where}.node: unknown node {entry.node!r}; expected one of {one_of(spec.nodes)}.")
        elif entry.state not in spec.nodes[entry.node].states:
            problems.append(f"{where}.state: got {entry.state!r}; expected one of "
                            f"{one_of(spec.nodes[entry.node].states)}.")
        for name, state in entry.given.items():
            if name not in spec.nodes:
                problems.append(f"{where}.given.{name}: unknown node; expected one of {one_of(spec.nodes)}.")
            elif state not in spec.nodes[name].states:
                problems.append(f"{where}.given.{name}: got {state!r}; expected one of "
                                f"{one_of(spec.nodes[name].states)}.")
    for entry in spec.published_asymptomatic.values():
        where = entry.location or f"published_asymptomatic.{entry.node}"
        if entry.node not in spec.nodes:
            problems.append(f"{where}: unknown node {entry.node!r}; expected one of {one_of(spec.nodes)}.")
    for prevalence in spec.published_prevalence.values():
        where = _where(prevalence.location, f"published_prevalence.{prevalence.node}")
        if prevalence.node not in spec.nodes:
            problems.append(f"{where}: unknown node {prevalence.node!r}; expected one of {one_of(spec.nodes)}.")
        elif prevalence.state not in spec.nodes[prevalence.node].states:
            problems.append(f"{where}.state: got {prevalence.state!r}; expected one of "
                            f"{one_of(spec.nodes[prevalence.node].states)}.")
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
    parent_states = [spec.nodes[p].states for p in node.parents]
    expected = set(itertools.product(*parent_states))
    seen: dict[tuple[str, ...], int] = {}
    for i, row in enumerate(node.cpd.rows):
        row_where = _where(row.location, f"{where}.table[{i}]")
        if len(row.when) != len(node.parents):
            problems.append(f"{row_where}.when: names {len(row.when)} parent state(s); expected one for each "
                            f"parent: {one_of(node.parents) or '(none: a root takes when = {})'}.")
            continue
        bad = [(p, s) for p, s, states in zip(node.parents, row.when, parent_states) if s not in states]
        for parent, state in bad:
            problems.append(f"{row_where}.when.{parent}: got {state!r}; expected one of "
                            f"{one_of(spec.nodes[parent].states)}.")
        if bad:
            continue
        if row.when in seen:
            problems.append(f"{row_where}.when: duplicate parent configuration {_config(node, row.when)} "
                            f"(also table[{seen[row.when]}]); expected each configuration once.")
            continue
        seen[row.when] = i
        unknown = [s for s in row.probability if s not in node.states]
        for state in unknown:
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
        explicit = [(s, p) for s, p in row.probability.items() if p is not None and s in node.states]
        before = len(problems)
        for state, parameter in explicit:
            _check_parameter(parameter, _where(parameter.location, f"{row_where}.probability.{state}"), problems)
        if unknown or missing or len(remainders) > 1 or len(problems) > before:
            continue
        total = math.fsum(p.value for _, p in explicit)
        if remainders and total > 1.0 + ROW_SUM_TOLERANCE:
            problems.append(f"{row_where}.probability: explicit entries sum to {total:.6g}, leaving a negative "
                            f"remainder for {remainders[0]!r}; expected a sum <= 1 (tolerance {ROW_SUM_TOLERANCE:g}).")
        elif not remainders and abs(total - 1.0) > ROW_SUM_TOLERANCE:
            problems.append(f"{row_where}.probability: the row sums to {total:.9g}; expected 1 within "
                            f"{ROW_SUM_TOLERANCE:g} (or mark one state \"remainder\").")
    for config in sorted(expected - set(seen)):
        problems.append(f"{where}.table: no row for parent configuration {_config(node, config)}; expected one "
                        "row per configuration of the parents.")
    return problems


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


def probability_table(spec: Spec, name: str) -> np.ndarray:
    """The CPD of ``name`` as an array ``[*parent_cards, n_states]`` (last axis sums to 1)."""
    node = spec.nodes[name]
    parent_cards = [len(spec.nodes[p].states) for p in node.parents]
    table = np.zeros((*parent_cards, len(node.states)))
    if isinstance(node.cpd, TableCPD):
        parent_index = [{s: i for i, s in enumerate(spec.nodes[p].states)} for p in node.parents]
        for row in node.cpd.rows:
            index = tuple(lookup[s] for lookup, s in zip(parent_index, row.when))
            explicit = 0.0
            remainder_at = None
            for j, state in enumerate(node.states):
                parameter = row.probability[state]
                if parameter is None:
                    remainder_at = j
                else:
                    table[index + (j,)] = parameter.value
                    explicit += parameter.value
            if remainder_at is not None:
                table[index + (remainder_at,)] = max(0.0, 1.0 - explicit)
        return table
    off = np.full(parent_cards, 1.0 - node.cpd.leak.value)
    for axis, parent in enumerate(node.parents):
        states = spec.nodes[parent].states
        factor = np.ones(len(states))
        for state, parameter in node.cpd.links.get(parent, {}).items():
            factor[states.index(state)] = 1.0 - parameter.value
        shape = [1] * len(parent_cards)
        shape[axis] = len(states)
        off = off * factor.reshape(shape)
    table[..., 0] = off
    table[..., 1] = 1.0 - off
    return table


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
    changed = {s: p for s, p in row.probability.items() if p is not None and p.id in values}
    if not changed:
        return row
    # every entry set in this row takes its new value; the rest of the row (explicit entries
    # and the remainder) shares what is left in proportion to its old values
    new_mass = math.fsum(float(values[p.id]) for p in changed.values())
    if new_mass > 1.0 + ROW_SUM_TOLERANCE:
        ids = ", ".join(p.id for p in changed.values())
        raise SpecError(f"with_parameters: {ids} are entries of one table row and were set to sum to "
                        f"{new_mass:.6g}; expected a sum <= 1.")
    other_mass = 1.0 - math.fsum(p.value for p in changed.values())
    n_others = len(row.probability) - len(changed)
    probability = dict(row.probability)
    for other, q in row.probability.items():
        if other in changed or q is None:
            continue
        if other_mass > 0:
            scaled = q.value * (1.0 - new_mass) / other_mass
        else:
            # every other state had probability 0: share the freed mass equally
            # (a remainder state, if any, takes its equal share automatically)
            scaled = (1.0 - new_mass) / n_others
        probability[other] = _set(q, min(max(scaled, 0.0), 1.0))
    for state, parameter in changed.items():
        probability[state] = _set(parameter, float(values[parameter.id]))
    return replace(row, probability=probability)


def replace_parameters(spec: Spec, replacements: Mapping[str, Parameter]) -> Spec:
    """A copy of ``spec`` with whole parameters (value, range, basis, source, ...) replaced by id.

    Unlike :func:`with_parameters` nothing co-varies: a table row's other entries stay as
    they are (a ``remainder`` state follows automatically), so the caller keeps rows summing
    to 1. Ids not in ``spec`` are ignored; check them with :func:`parameters_by_id` first.

    Examples
    --------
    >>> from bayescramp.priors import load_spec
    >>> spec = load_spec()
    >>> old = parameters_by_id(spec)["P(diuretic=thiazide)"][1]
    >>> new = replace_parameters(spec, {old.id: replace(old, value=0.1, basis="fitted")})
    >>> parameters_by_id(new)["P(diuretic=thiazide)"][1].basis
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

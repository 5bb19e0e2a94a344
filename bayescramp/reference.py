"""The bridge to pgmpy: build, check, export, import, and the oracle for the tests.

This is the only module that imports pgmpy, and it does so lazily inside functions, so
``import bayescramp`` (and batch scoring) never pays pgmpy's start-up cost.
"""

from __future__ import annotations

import itertools
import tempfile
import warnings
import zlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ._arguments import as_path
from ._errors import InputError, SpecError
from ._regular_file import MAX_MODEL_FILE_BYTES, read_regular_file
from .spec import Node, Parameter, Spec, TableCPD, TableRow, probability_table, table_parameter_id, topological_order

__all__ = ["to_pgmpy", "from_pgmpy", "read_network", "write_network", "oracle_posterior", "oracle_map",
           "NETWORK_SUFFIXES", "NETWORK_ROW_SUM_TOLERANCE"]

NETWORK_SUFFIXES = (".bif", ".bif.gz", ".xmlbif", ".xml", ".xml.gz")
#: A CPD row read from a network file must sum to 1 within this (rounding in printed files); it is then rescaled.
NETWORK_ROW_SUM_TOLERANCE = 1e-3
_MAX_LISTED = 20


def _pgmpy():
    # pgmpy warns at import about deprecations in modules bayescramp does not use
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import pgmpy.factors.discrete
        import pgmpy.inference
        import pgmpy.models
        import pgmpy.readwrite
    return pgmpy


def to_pgmpy(spec: Spec):
    """A pgmpy ``DiscreteBayesianNetwork`` equal to ``spec``, checked with ``check_model()``.

    Examples
    --------
    >>> from bayescramp.priors import load_spec
    >>> to_pgmpy(load_spec()).check_model()
    True
    """
    pgmpy = _pgmpy()
    names = topological_order(spec)
    model = pgmpy.models.DiscreteBayesianNetwork()
    model.add_nodes_from(names)
    model.add_edges_from((p, n) for n in names for p in spec.nodes[n].parents)
    for name in names:
        node = spec.nodes[name]
        table = probability_table(spec, name)
        n_states = len(node.states)
        # pgmpy wants [n_states, prod(parent_cards)] with the first parent varying slowest,
        # which is exactly C order of our [*parent_cards, n_states] table moved last-to-first
        values = np.moveaxis(table, -1, 0).reshape(n_states, -1)
        cpd = pgmpy.factors.discrete.TabularCPD(
            variable=name, variable_card=n_states, values=values,
            evidence=list(node.parents) or None,
            evidence_card=[len(spec.nodes[p].states) for p in node.parents] or None,
            state_names={name: list(node.states), **{p: list(spec.nodes[p].states) for p in node.parents}},
        )
        model.add_cpds(cpd)
    model.check_model()
    return model


def from_pgmpy(model, *, source: str = "pgmpy model") -> Spec:
    """A :class:`Spec` from a pgmpy ``DiscreteBayesianNetwork``.

    Every CPD entry becomes a parameter with ``basis = "imported"``, ``source`` naming
    where it came from and a range equal to its value (imported files carry no ranges).
    Each row (a node's distribution given one parent configuration) must hold probabilities
    in [0, 1] summing to 1 within :data:`NETWORK_ROW_SUM_TOLERANCE`; it is then rescaled to
    sum to 1 exactly. pgmpy itself accepts rows within 0.01 of 1 and reads any sum from a
    file, so a row that sums to 0.5 or 2.61 is refused here rather than silently rescaled.

    Raises
    ------
    SpecError
        Listing every row that is not a distribution, with its node and parent configuration.

    Examples
    --------
    >>> from bayescramp.priors import load_spec
    >>> spec = from_pgmpy(to_pgmpy(load_spec()))
    >>> sorted(spec.nodes) == sorted(load_spec().nodes)
    True
    """
    nodes: dict[str, Node] = {}
    problems: list[str] = []
    for name in _pgmpy_topological(model):
        cpd = model.get_cpds(name)
        if cpd is None:
            raise SpecError(f"{source}: node {name!r} has no CPD; expected one per node.")
        states = tuple(str(s) for s in cpd.state_names[name])
        parents = tuple(cpd.variables[1:])
        values = np.asarray(cpd.get_values(), dtype=float)   # [n_states, prod(parent cards)]
        parent_states = [tuple(str(s) for s in cpd.state_names[p]) for p in parents]
        problems.extend(_row_problems(source, name, states, parents, parent_states, values))
        if problems:
            continue
        values = values / values.sum(axis=0, keepdims=True)
        rows = []
        for column, config in enumerate(itertools.product(*parent_states)):
            probability = {}
            for k, state in enumerate(states):
                value = float(values[k, column])
                probability[state] = Parameter(
                    id=table_parameter_id(name, state, parents, config), value=value, low=value, high=value,
                    basis="imported", source=source)
            rows.append(TableRow(when=config, probability=probability))
        nodes[name] = Node(name=name, states=states, parents=parents, cpd=TableCPD(rows=tuple(rows)),
                           label=name, location=f"{source}, node {name}")
    if problems:
        listed = problems[:_MAX_LISTED]
        if len(problems) > _MAX_LISTED:
            listed.append(f"{source}: ... and {len(problems) - _MAX_LISTED} more rows that are not distributions.")
        raise SpecError(listed)
    return Spec(nodes=nodes, meta={"name": Path(source).name, "description": f"imported from {source}"},
                files=(source,))


def _row_problems(source: str, name: str, states: tuple[str, ...], parents: tuple[str, ...],
                  parent_states: list[tuple[str, ...]], values: np.ndarray) -> list[str]:
    """One sentence per CPD row (column of ``values``) that is not a probability distribution."""
    problems = []
    totals = values.sum(axis=0)
    bad_entries = ~np.isfinite(values) | (values < 0)  # an entry above 1 shows as a sum above 1
    bad = bad_entries.any(axis=0) | ~(np.abs(totals - 1.0) <= NETWORK_ROW_SUM_TOLERANCE)
    configurations = list(itertools.product(*parent_states))
    for column in np.flatnonzero(bad):
        given = (" given " + ", ".join(f"{p}={s}" for p, s in zip(parents, configurations[column]))) if parents else ""
        where = f"{source}, node {name!r}{given}"
        if bad_entries[:, column].any():
            k = int(np.flatnonzero(bad_entries[:, column])[0])
            problems.append(f"{where}: P({name}={states[k]}) is {values[k, column]:g}; expected a probability in "
                            "[0, 1].")
        else:
            problems.append(f"{where}: the probabilities of {', '.join(states)} sum to {totals[column]:.6g}; expected "
                            f"1 within {NETWORK_ROW_SUM_TOLERANCE:g} (fix the file: each row of a CPD is a "
                            "distribution).")
    return problems


def _pgmpy_topological(model) -> list[str]:
    order: list[str] = []
    placed: set[str] = set()
    remaining = list(model.nodes())
    while remaining:
        for name in list(remaining):
            if all(p in placed for p in model.get_parents(name)):
                order.append(name)
                placed.add(name)
                remaining.remove(name)
    return order


def read_network(path: str | Path) -> Spec:
    """Read a BIF or XMLBIF file (optionally gzip-compressed) into a :class:`Spec`.

    Raises
    ------
    InputError
        When the file is missing or pgmpy cannot parse it.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such network file; expected a .bif or .xmlbif file.")
    what = "a .bif or .xmlbif network file (optionally gzip-compressed)"
    data = read_regular_file(path, what=what, error=InputError)
    if data[:2] == _GZIP_MAGIC:
        data = _gunzip(path, data, what)
    elif path.suffix.lower() == ".gz":
        raise InputError(f"{path}: named .gz but not gzip-compressed; expected {what}.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: byte {error.start} is not UTF-8 text; expected {what}.") from None
    pgmpy = _pgmpy()
    stem = path.name.lower().removesuffix(".gz")
    try:
        if stem.endswith(".bif"):
            model = pgmpy.readwrite.BIFReader(string=text).get_model()
        else:
            model = pgmpy.readwrite.XMLBIFReader(string=text).get_model()
    except Exception as error:  # pgmpy raises many kinds of errors on malformed files
        raise InputError(f"{path}: pgmpy could not read it as {'BIF' if stem.endswith('.bif') else 'XMLBIF'} "
                         f"({type(error).__name__}: {error}); expected a valid network file.") from None
    if len(model.nodes()) == 0:
        raise InputError(f"{path}: pgmpy could not read it as {'BIF' if stem.endswith('.bif') else 'XMLBIF'} "
                         "(no variables found); expected a valid network file.")
    return from_pgmpy(model, source=path.name)


_GZIP_MAGIC = b"\x1f\x8b"


def _gunzip(path: Path, data: bytes, what: str) -> bytes:
    """Decompress gzip ``data`` (every member), refusing a truncated or corrupt file in one sentence."""
    parts, size = [], 0
    while data:
        decompressor = zlib.decompressobj(wbits=31)
        try:
            part = decompressor.decompress(data, MAX_MODEL_FILE_BYTES + 1 - size)
        except zlib.error as error:
            raise InputError(f"{path}: the gzip data is corrupt ({error}); expected {what}.") from None
        size += len(part)
        parts.append(part)
        if size > MAX_MODEL_FILE_BYTES:
            raise InputError(f"{path}: decompresses to more than {MAX_MODEL_FILE_BYTES:,} bytes; expected {what}.")
        if not decompressor.eof:
            raise InputError(f"{path}: the gzip data ends early (the file is truncated); expected {what} (copy or "
                             "download it again).")
        data = decompressor.unused_data
    return b"".join(parts)


def write_network(spec: Spec, path: str | Path) -> Path:
    """Write ``spec`` as BIF (``.bif``) or XMLBIF (``.xmlbif``/``.xml``), atomically.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from bayescramp.priors import load_spec
    >>> out = write_network(load_spec(), pathlib.Path(tempfile.mkdtemp()) / "model.bif")
    >>> out.exists()
    True
    """
    path = as_path(path, argument="path", caller="export")
    suffix = path.suffix.lower()
    if suffix not in (".bif", ".xmlbif", ".xml"):
        raise InputError(f"{path}: unknown network format {suffix!r}; expected .bif, .xmlbif or .xml.")
    if not path.parent.exists():
        raise InputError(f"{path}: the folder {path.parent} does not exist; expected an existing folder.")
    pgmpy = _pgmpy()
    model = to_pgmpy(spec)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp",
                                     delete=False) as handle:
        temporary = Path(handle.name)
    try:
        writer = (pgmpy.readwrite.BIFWriter if suffix == ".bif" else pgmpy.readwrite.XMLBIFWriter)(model)
        writer.write(str(temporary))
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def oracle_posterior(model, evidence: Mapping[str, Any], targets: Sequence[str]) -> dict[str, np.ndarray]:
    """Posterior marginals by pgmpy ``VariableElimination``, one query per target.

    ``evidence`` maps a node to a state name (hard) or to a likelihood vector over its
    states (soft or set evidence, passed as pgmpy virtual evidence).
    """
    pgmpy = _pgmpy()
    hard = {k: v for k, v in evidence.items() if isinstance(v, str)}
    virtual = []
    for node, vector in evidence.items():
        if isinstance(vector, str):
            continue
        cpd = model.get_cpds(node)
        states = list(cpd.state_names[node])
        values = np.asarray(vector, dtype=float).reshape(-1, 1)
        virtual.append(pgmpy.factors.discrete.TabularCPD(node, len(states), values, state_names={node: states}))
    inference = pgmpy.inference.VariableElimination(model)
    result = {}
    # one query per target: pgmpy's joint=False path can pick an elimination order whose
    # intermediate factor does not fit in memory (seen on alarm)
    for target in targets:
        factor = inference.query([target], evidence=hard or None, virtual_evidence=virtual or None,
                                 show_progress=False)
        states = list(model.get_cpds(target).state_names[target])
        result[target] = np.array([factor.get_value(**{target: s}) for s in states])
    return result


def oracle_map(model, evidence: Mapping[str, str], over: Sequence[str]) -> dict[str, str]:
    """The most probable joint states of ``over`` given hard ``evidence``, by pgmpy ``map_query``.

    Examples
    --------
    >>> from bayescramp.priors import load_spec
    >>> oracle_map(to_pgmpy(load_spec()), {"pale_skin": "yes"}, ["iron_deficiency", "anemia"])
    {'iron_deficiency': 'absent', 'anemia': 'absent'}
    """
    pgmpy = _pgmpy()
    inference = pgmpy.inference.VariableElimination(model)
    result = inference.map_query(variables=list(over), evidence=dict(evidence) or None, show_progress=False)
    return {node: str(result[node]) for node in over}

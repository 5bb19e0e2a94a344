"""Prior files (TOML) to a :class:`~bayescramp.spec.Spec`, with overlays.

The file format is documented in ``priors/README.md``. Every problem found is reported
as one sentence naming the file and the key path; all problems of a load are listed
together in one :class:`~bayescramp._errors.SpecError`.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from ._errors import SpecError, one_of
from .spec import (
    Node,
    NoisyOrCPD,
    Parameter,
    Prevalence,
    Spec,
    TableCPD,
    TableRow,
    leak_parameter_id,
    link_parameter_id,
    parameters_by_id,
    table_parameter_id,
    validate,
)

__all__ = ["load_spec", "bundled_priors", "bundled_path", "DEFAULT_PRIORS"]

DEFAULT_PRIORS = "default.toml"
_NODE_KEYS = {"label", "description", "states", "parents", "cpd", "table", "leak", "links"}
_PARAMETER_KEYS = {"value", "range", "basis", "source", "note", "distribution"}
_TOP_KEYS = {"meta", "nodes", "parameters", "published_prevalence"}
#: [meta] keys holding lists (read through bayescramp.spec.ModelInfo), and what they list.
_META_LISTS = {"observable": "node names", "targets": "node names", "positive_states": "state names"}


def bundled_path(name: str) -> Path:
    """Path of a file shipped in the package's ``priors`` folder (wheel or source tree)."""
    packaged = resources.files("bayescramp").joinpath("priors", name)
    if packaged.is_file():
        return Path(str(packaged))
    source_tree = Path(__file__).resolve().parent.parent / "priors" / name
    return source_tree


def bundled_priors() -> list[str]:
    """Names of the prior files shipped with bayescramp (``default``, ``older_adults``, ...)."""
    folder = bundled_path(DEFAULT_PRIORS).parent
    return sorted(p.stem for p in folder.glob("*.toml"))


def resolve(path: str | Path) -> Path:
    """A prior file path; a bare bundled name such as ``older_adults`` also works."""
    candidate = Path(path)
    if candidate.exists():
        return candidate
    name = candidate.name if candidate.suffix == ".toml" else f"{candidate.name}.toml"
    if candidate.parent in (Path("."), Path("priors")) and bundled_path(name).is_file():
        return bundled_path(name)
    raise SpecError(f"{path}: no such prior file; expected a path to a .toml file or one of the bundled "
                    f"names {one_of(bundled_priors())}.")


def load_spec(*paths: str | Path) -> Spec:
    """Read prior files, later ones overlaying earlier ones, and validate the result.

    Parameters
    ----------
    *paths : str or Path
        Prior files. None given means the bundled ``default.toml``.

    Returns
    -------
    Spec
        The validated model specification.

    Raises
    ------
    SpecError
        Listing every problem found, each naming the file and key path.

    Examples
    --------
    >>> spec = load_spec()
    >>> "leg_cramps" in spec.nodes
    True
    """
    files = [resolve(p) for p in paths] if paths else [bundled_path(DEFAULT_PRIORS)]
    files = _with_base(files)
    problems: list[str] = []
    raw_nodes: dict[str, tuple[dict, str]] = {}
    overrides: list[tuple[str, Any, str]] = []
    prevalence: dict[str, Prevalence] = {}
    meta: dict[str, str] = {}
    for file in files:
        label = file.name
        try:
            with open(file, "rb") as handle:
                document = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            problems.append(f"{label}: TOML syntax error: {error}; expected valid TOML "
                            "(a table or node declared twice is a duplicate).")
            continue
        except OSError as error:
            problems.append(f"{label}: cannot read the file ({error.strerror}).")
            continue
        for key in document:
            if key not in _TOP_KEYS:
                problems.append(f"{label}, {key}: unknown top-level key; expected one of {one_of(sorted(_TOP_KEYS))}.")
        file_meta = document.get("meta", {})
        if not isinstance(file_meta, dict):
            problems.append(f"{label}, meta: got {file_meta!r}; expected a table.")
            file_meta = {}
        for key, value in file_meta.items():
            if key in _META_LISTS:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    problems.append(f"{label}, meta.{key}: got {value!r}; expected a list of {_META_LISTS[key]}.")
                    continue
                meta[key] = tuple(value)
            elif key == "base" and file != files[0]:
                continue  # only the first file's base is loaded; later overlays stack on what is there
            elif key == "name" and isinstance(value, str) and "name" in meta:
                meta[key] = f"{meta[key]}+{value}"  # an overlaid model is named after all its files
            elif isinstance(value, str):
                meta[key] = value
            else:
                problems.append(f"{label}, meta.{key}: got {value!r}; expected a string.")
        nodes = document.get("nodes", {})
        if not isinstance(nodes, dict):
            problems.append(f"{label}, nodes: got {type(nodes).__name__}; expected a table of nodes.")
            nodes = {}
        for name, raw in nodes.items():
            if not isinstance(raw, dict):
                problems.append(f"{label}, nodes.{name}: got {raw!r}; expected a table.")
                continue
            raw_nodes[name] = (raw, label)
        parameters = document.get("parameters", {})
        if not isinstance(parameters, dict):
            problems.append(f"{label}, parameters: got {type(parameters).__name__}; expected a table keyed by "
                            "parameter id.")
            parameters = {}
        overrides.extend((key, raw, label) for key, raw in parameters.items())
        published = document.get("published_prevalence", {})
        if not isinstance(published, dict):
            problems.append(f"{label}, published_prevalence: got {type(published).__name__}; expected a table.")
            published = {}
        for name, raw in published.items():
            entry = _prevalence(name, raw, f"{label}, published_prevalence.{name}", problems)
            if entry is not None:
                prevalence[name] = entry
    nodes_built: dict[str, Node] = {}
    for name, (raw, label) in raw_nodes.items():
        node = _node(name, raw, label, raw_nodes, problems)
        if node is not None:
            nodes_built[name] = node
    spec = Spec(nodes=nodes_built, meta=meta, published_prevalence=prevalence,
                files=tuple(str(f) for f in files))
    if not problems:
        spec = _apply_overrides(spec, overrides, problems)
    if not problems:
        if not spec.nodes:
            problems.append(f"{files[0].name}: no nodes defined; expected at least one [nodes.NAME] table.")
        problems.extend(validate(spec))
    if problems:
        raise SpecError(problems)
    return spec


def _with_base(files: list[Path]) -> list[Path]:
    """Prepend the file an overlay names as ``meta.base`` when the overlay is given first.

    ``load_spec("older_adults")`` then means default + older_adults, as the overlay intends.
    """
    seen = {f.resolve() for f in files}
    while True:
        try:
            with open(files[0], "rb") as handle:
                base = tomllib.load(handle).get("meta", {}).get("base")
        except (OSError, tomllib.TOMLDecodeError, AttributeError):
            return files  # reported properly by the main loop
        if not isinstance(base, str):
            return files
        candidate = files[0].parent / base
        base_path = candidate if candidate.is_file() else resolve(base)
        if base_path.resolve() in seen:
            return files
        seen.add(base_path.resolve())
        files = [base_path] + files


def _parameter(raw: Any, parameter_id: str, where: str, problems: list[str]) -> Parameter | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: got {raw!r}; expected an inline table "
                        "{ value = ..., range = [low, high], basis = ..., source = ... }.")
        return None
    unknown = [k for k in raw if k not in _PARAMETER_KEYS]
    for key in unknown:
        problems.append(f"{where}.{key}: unknown key; expected one of {one_of(sorted(_PARAMETER_KEYS))}.")
    before = len(problems)
    value = raw.get("value")
    if "value" not in raw:
        problems.append(f"{where}: no value; expected value = a probability in [0, 1].")
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(f"{where}.value: got {value!r} ({type(value).__name__}); expected a number in [0, 1].")
    elif math.isnan(value):
        problems.append(f"{where}.value: got nan; expected a number in [0, 1].")
    bounds = raw.get("range")
    if "range" not in raw:
        problems.append(f"{where}: no range; expected range = [low, high] (the plausible range of the value).")
    elif (not isinstance(bounds, list) or len(bounds) != 2
          or any(isinstance(b, bool) or not isinstance(b, (int, float)) for b in bounds)):
        problems.append(f"{where}.range: got {bounds!r}; expected [low, high], two numbers.")
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        problems.append(f"{where}.source: got {source!r}; expected evidence-file row ids or a citation.")
    basis = raw.get("basis")
    if not isinstance(basis, str):
        problems.append(f"{where}.basis: got {basis!r}; expected \"evidence\", \"derived\" or \"expert\".")
    note = raw.get("note", "")
    if not isinstance(note, str):
        problems.append(f"{where}.note: got {note!r}; expected a string.")
    distribution = raw.get("distribution")
    if distribution is not None and not isinstance(distribution, dict):
        problems.append(f"{where}.distribution: got {distribution!r}; expected an inline table such as "
                        "{ kind = \"beta\", alpha = 2.0, beta = 30.0 }.")
    if len(problems) > before:
        return None
    return Parameter(id=parameter_id, value=float(value), low=float(bounds[0]), high=float(bounds[1]),
                     basis=basis, source=source.strip(), note=note, distribution=distribution,
                     location=where)


def _string_list(raw: Any, where: str, problems: list[str]) -> tuple[str, ...] | None:
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        problems.append(f"{where}: got {raw!r}; expected a list of strings.")
        return None
    return tuple(raw)


def _node(name: str, raw: dict, label: str, raw_nodes: dict, problems: list[str]) -> Node | None:
    where = f"{label}, nodes.{name}"
    before = len(problems)
    for key in raw:
        if key not in _NODE_KEYS:
            problems.append(f"{where}.{key}: unknown key; expected one of {one_of(sorted(_NODE_KEYS))}.")
    states = _string_list(raw.get("states"), f"{where}.states", problems)
    parents = _string_list(raw.get("parents", []), f"{where}.parents", problems)
    kind = raw.get("cpd")
    if kind not in ("table", "noisy_or"):
        problems.append(f"{where}.cpd: got {kind!r}; expected \"table\" or \"noisy_or\" (unknown CPD kind).")
    for text_key in ("label", "description"):
        if not isinstance(raw.get(text_key, ""), str):
            problems.append(f"{where}.{text_key}: got {raw[text_key]!r}; expected a string.")
    if len(problems) > before:
        return None
    if kind == "table":
        cpd = _table(name, raw, where, states, parents, raw_nodes, problems)
    else:
        cpd = _noisy_or(name, raw, where, parents, problems)
    if cpd is None:
        return None
    return Node(name=name, states=states, parents=parents, cpd=cpd, label=raw.get("label", ""),
                description=raw.get("description", ""), location=where)


def _table(name, raw, where, states, parents, raw_nodes, problems) -> TableCPD | None:
    rows_raw = raw.get("table")
    if not isinstance(rows_raw, list) or not rows_raw:
        problems.append(f"{where}.table: got {rows_raw!r}; expected one or more [[nodes.{name}.table]] rows.")
        return None
    rows = []
    for i, row in enumerate(rows_raw):
        row_where = f"{where}.table[{i}]"
        if not isinstance(row, dict):
            problems.append(f"{row_where}: got {row!r}; expected a table with when and probability.")
            continue
        for key in row:
            if key not in ("when", "probability"):
                problems.append(f"{row_where}.{key}: unknown key; expected when, probability.")
        when = row.get("when", {})
        if not isinstance(when, dict):
            problems.append(f"{row_where}.when: got {when!r}; expected an inline table naming each parent's state.")
            continue
        bad_parents = [p for p in when if p not in parents]
        for parent in bad_parents:
            problems.append(f"{row_where}.when.{parent}: {parent!r} is not a parent of {name!r}; expected "
                            f"{one_of(parents) or 'no parents (when = {})'}.")
        missing = [p for p in parents if p not in when]
        if missing:
            problems.append(f"{row_where}.when: no state given for parent(s) {one_of(missing)}; expected every "
                            "parent named (configurations are never positional).")
        if bad_parents or missing:
            continue
        config = tuple(when[p] for p in parents)
        if not all(isinstance(s, str) for s in config):
            problems.append(f"{row_where}.when: got {when!r}; expected state names (strings).")
            continue
        probability_raw = row.get("probability")
        if not isinstance(probability_raw, dict):
            problems.append(f"{row_where}.probability: got {probability_raw!r}; expected a table with one "
                            "entry per state.")
            continue
        probability = {}
        for state, entry in probability_raw.items():
            if entry == "remainder":
                probability[state] = None
                continue
            parameter_id = table_parameter_id(name, state, parents, config)
            parameter = _parameter(entry, parameter_id, f"{row_where}.probability.{state}", problems)
            if parameter is not None:
                probability[state] = parameter
        rows.append(TableRow(when=config, probability=probability, location=row_where))
    return TableCPD(rows=tuple(rows))


def _noisy_or(name, raw, where, parents, problems) -> NoisyOrCPD | None:
    before = len(problems)
    leak = _parameter(raw.get("leak"), leak_parameter_id(name), f"{where}.leak", problems)
    links_raw = raw.get("links", {})
    if not isinstance(links_raw, dict):
        problems.append(f"{where}.links: got {links_raw!r}; expected links.PARENT.STATE = {{ value = ... }}.")
        return None
    links: dict[str, dict[str, Parameter]] = {}
    for parent, by_state in links_raw.items():
        if not isinstance(by_state, dict):
            problems.append(f"{where}.links.{parent}: got {by_state!r}; expected a table keyed by the parent's "
                            "active state(s).")
            continue
        links[parent] = {}
        for state, entry in by_state.items():
            parameter = _parameter(entry, link_parameter_id(name, parent, state),
                                   f"{where}.links.{parent}.{state}", problems)
            if parameter is not None:
                links[parent][state] = parameter
    if len(problems) > before:
        return None
    return NoisyOrCPD(leak=leak, links=links)


def _prevalence(name: str, raw: Any, where: str, problems: list[str]) -> Prevalence | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: got {raw!r}; expected {{ state = ..., value = ..., range = [..], source = ... }}.")
        return None
    state, value, bounds = raw.get("state"), raw.get("value"), raw.get("range")
    if not isinstance(state, str):
        problems.append(f"{where}.state: got {state!r}; expected a state name.")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(f"{where}.value: got {value!r}; expected a number in [0, 1].")
        return None
    if bounds is None:
        bounds = [value, value]
    if not isinstance(bounds, list) or len(bounds) != 2:
        problems.append(f"{where}.range: got {bounds!r}; expected [low, high].")
        return None
    return Prevalence(node=name, state=state, value=float(value), low=float(bounds[0]), high=float(bounds[1]),
                      source=str(raw.get("source", "")), location=where)


def _apply_overrides(spec: Spec, overrides: list[tuple[str, Any, str]], problems: list[str]) -> Spec:
    if not overrides:
        return spec
    replacements: dict[str, Parameter] = {}
    known = parameters_by_id(spec)
    for parameter_id, raw, label in overrides:
        where = f'{label}, parameters."{parameter_id}"'
        if parameter_id not in known:
            close = difflib.get_close_matches(parameter_id, list(known), n=2, cutoff=0.8)
            hint = f" (did you mean {one_of(close)}?)" if close else ""
            problems.append(f"{where}: no earlier file defines this parameter id{hint}; expected an id listed by "
                            "`bayescramp priors check --parameters` or Model.parameters()['id'].")
            continue
        parameter = _parameter(raw, parameter_id, where, problems)
        if parameter is not None:
            replacements[parameter_id] = parameter
    if problems:
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

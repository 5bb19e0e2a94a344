"""Prior files (TOML) to a :class:`~bayescramp.spec.Spec`, with overlays.

The file format is documented in ``priors/README.md``. Every problem found is reported
as one sentence naming the file and the key path; all problems of a load are listed
together in one :class:`~bayescramp._errors.SpecError`.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ._errors import SpecError, one_of
from ._regular_file import read_regular_file
from .spec import (
    ConditionalPrevalence,
    Node,
    NoisyOrCPD,
    Parameter,
    Prevalence,
    SilentShare,
    Spec,
    TableCPD,
    TableRow,
    leak_parameter_id,
    link_parameter_id,
    parameters_by_id,
    replace_parameters,
    table_parameter_id,
    validate,
)

__all__ = ["load_spec", "bundled_priors", "bundled_path", "DEFAULT_PRIORS"]

DEFAULT_PRIORS = "default.toml"
_NODE_KEYS = {"label", "description", "states", "parents", "cpd", "table", "leak", "links"}
_PARAMETER_KEYS = {"value", "range", "basis", "source", "note", "distribution"}
_TOP_KEYS = {"meta", "nodes", "parameters", "published_prevalence", "published_conditional", "published_asymptomatic"}
#: [meta] keys holding lists (read through bayescramp.spec.ModelInfo), and what they list.
_META_LISTS = {"observable": "node names", "targets": "node names", "positive_states": "state names",
               "symptoms": "node names"}


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
    documents = _Documents()
    files = _with_base(files, documents)
    read = _Reading()
    for position, file in enumerate(files):
        document = documents.get(file)
        if isinstance(document, str):
            read.problems.append(document)
            continue
        read.document(document, file.name, position, first=file == files[0])
    problems = read.problems
    nodes_built: dict[str, Node] = {}
    for name, (raw, label, _) in read.raw_nodes.items():
        node = _node(name, raw, label, read.raw_nodes, problems)
        if node is not None:
            nodes_built[name] = node
    spec = Spec(nodes=nodes_built, meta=read.meta, published_prevalence=read.prevalence,
                files=tuple(str(f) for f in files), published_conditional=tuple(read.conditional),
                published_asymptomatic=read.asymptomatic)
    if not problems:
        defined = {name: (read.first_defined[name], read.raw_nodes[name][2]) for name in read.raw_nodes}
        spec = _apply_overrides(spec, read.overrides, defined, _late_bases(files, documents), problems)
    if not problems:
        if not spec.nodes:
            problems.append(f"{files[0].name}: no nodes defined; expected at least one [nodes.NAME] table.")
        problems.extend(validate(spec))
    if problems:
        raise SpecError(problems)
    return spec


@dataclass
class _Reading:
    """What the prior files say so far, file after file (later files overlay earlier ones), and the problems."""

    problems: list[str] = field(default_factory=list)
    raw_nodes: dict[str, tuple[dict, str, int]] = field(default_factory=dict)
    first_defined: dict[str, int] = field(default_factory=dict)
    overrides: list[tuple[str, Any, str, int]] = field(default_factory=list)
    prevalence: dict[str, Prevalence] = field(default_factory=dict)
    conditional: list[ConditionalPrevalence] = field(default_factory=list)
    asymptomatic: dict[str, SilentShare] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def document(self, document: dict, label: str, position: int, *, first: bool) -> None:
        """Read one file's document (``first``: the first file, whose ``meta.base`` counts)."""
        for key in document:
            if key not in _TOP_KEYS:
                self.problems.append(f"{label}, {key}: unknown top-level key; expected one of "
                                     f"{one_of(sorted(_TOP_KEYS))}.")
        self._meta(self._table(document, "meta", label, "{value!r}", "a table"), label, first)
        self._nodes(self._table(document, "nodes", label, "{kind}", "a table of nodes"), label, position)
        parameters = self._table(document, "parameters", label, "{kind}", "a table keyed by parameter id")
        self.overrides.extend((key, raw, label, position) for key, raw in parameters.items())
        self._published(self._table(document, "published_prevalence", label, "{kind}", "a table"), label)
        self.conditional.extend(_published_list(document.get("published_conditional", []), label, _conditional,
                                                "published_conditional", self.problems))
        silent = self._table(document, "published_asymptomatic", label, "{kind}", "a table keyed by node")
        for name, raw in silent.items():
            entry = _silent_share(name, raw, f"{label}, published_asymptomatic.{name}", self.problems)
            if entry is not None:
                self.asymptomatic[name] = entry

    def _table(self, document: dict, key: str, label: str, shown: str, expected: str) -> dict:
        """``document[key]`` when it is a table (``{}`` if absent); otherwise a problem and ``{}``."""
        value = document.get(key, {})
        if isinstance(value, dict):
            return value
        self.problems.append(f"{label}, {key}: got {shown.format(value=value, kind=type(value).__name__)}; "
                             f"expected {expected}.")
        return {}

    def _meta(self, file_meta: dict, label: str, first: bool) -> None:
        for key, value in file_meta.items():
            if key in _META_LISTS:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    self.problems.append(f"{label}, meta.{key}: got {value!r}; expected a list of "
                                         f"{_META_LISTS[key]}.")
                    continue
                self.meta[key] = tuple(value)
            elif key == "base" and not first:
                continue  # only the first file's base is loaded; later overlays stack on what is there
            elif key == "name" and isinstance(value, str) and "name" in self.meta:
                self.meta[key] = f"{self.meta[key]}+{value}"  # an overlaid model is named after all its files
            elif isinstance(value, str):
                self.meta[key] = value
            else:
                self.problems.append(f"{label}, meta.{key}: got {value!r}; expected a string.")

    def _nodes(self, nodes: dict, label: str, position: int) -> None:
        for name, raw in nodes.items():
            if not isinstance(raw, dict):
                self.problems.append(f"{label}, nodes.{name}: got {raw!r}; expected a table.")
                continue
            self.raw_nodes[name] = (raw, label, position)
            self.first_defined.setdefault(name, position)

    def _published(self, published: dict, label: str) -> None:
        for name, raw in published.items():
            if raw == "none":   # an overlay for another population: the earlier figure does not apply
                self.prevalence.pop(name, None)
                continue
            entry = _prevalence(name, raw, f"{label}, published_prevalence.{name}", self.problems)
            if entry is not None:
                self.prevalence[name] = entry


class _Documents:
    """Each prior file read and parsed once: path -> its TOML document, or the sentence saying why not."""

    def __init__(self):
        self._cache: dict[Path, dict | str] = {}

    def get(self, path: Path) -> dict | str:
        key = path.resolve()
        if key not in self._cache:
            self._cache[key] = _read_document(path)
        return self._cache[key]


def _read_document(path: Path) -> dict | str:
    label = path.name
    try:
        data = read_regular_file(path, what="a .toml prior file", error=SpecError)
    except SpecError as error:
        return str(error)
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        return f"{label}: byte {error.start} is not UTF-8 text; expected a UTF-8 TOML prior file."
    except tomllib.TOMLDecodeError as error:
        return (f"{label}: TOML syntax error: {error}; expected valid TOML "
                "(a table or node declared twice is a duplicate).")


def _base_of(path: Path, document: dict | str) -> Path | None:
    """The file ``path``'s ``meta.base`` names: a bundled prior, or a file beside ``path``; never elsewhere."""
    meta = document.get("meta") if isinstance(document, dict) else None
    if not isinstance(meta, dict) or "base" not in meta:
        return None
    base = meta["base"]
    where = f"{path.name}, meta.base"
    allowed = (f"the name of a bundled prior file ({one_of(bundled_priors())}) or of a .toml file in the same folder "
               f"as {path.name}")
    if not isinstance(base, str) or not base.strip():
        raise SpecError(f"{where}: got {base!r}; expected {allowed}.")
    name = base.strip()
    if "/" in name or "\\" in name or name in (".", "..") or Path(name).is_absolute():
        raise SpecError(f"{where}: got {base!r}, a path; expected {allowed} (a base may not name a file in another "
                        "folder; load that file explicitly instead: load_model(BASE, OVERLAY)).")
    beside = path.parent / name
    if beside.exists():
        return beside
    bundled = name if name.endswith(".toml") else f"{name}.toml"
    if bundled_path(bundled).is_file():
        return bundled_path(bundled)
    raise SpecError(f"{where}: got {base!r}, which is neither a file in {path.parent} nor a bundled prior; expected "
                    f"{allowed}.")


def _with_base(files: list[Path], documents: _Documents) -> list[Path]:
    """Prepend the chain of bases the first file names (``meta.base``), unless a base is listed explicitly.

    ``load_spec("older_adults")`` then means default + older_adults, as the overlay intends. A base
    that is already in the list is not inserted again: the list is applied in the order given.
    """
    chain = [files[0]]
    explicit = {f.resolve() for f in files}
    while True:
        base = _base_of(chain[0], documents.get(chain[0]))
        if base is None:
            return chain[:-1] + files
        if base.resolve() in {c.resolve() for c in chain}:
            cycle = " -> ".join(c.name for c in [*reversed(chain), base])
            raise SpecError(f"{files[0].name}, meta.base: the bases form a cycle ({cycle}); expected a chain of bases "
                            "that ends at a file without meta.base (such as default.toml).")
        if base.resolve() in explicit:
            return chain[:-1] + files
        chain.insert(0, base)


def _late_bases(files: list[Path], documents: _Documents) -> dict[str, str]:
    """File label -> the sentence for an overlay whose base is listed after it (its ids are not defined yet)."""
    hints = {}
    for position, file in enumerate(files):
        try:
            base = _base_of(file, documents.get(file))
        except SpecError:
            continue
        later = [f for f in files[position + 1:] if base is not None and f.resolve() == base.resolve()]
        if later:
            hints[file.name] = (f"{file.name}: overlays {later[0].name} (its meta.base), which is listed after it; "
                                "files apply in the order given (later files override earlier ones), so its "
                                f"parameters would change numbers not defined yet; expected {later[0].name} first "
                                f"(load_model(\"{later[0].stem}\", \"{file.stem}\"), --priors {later[0].stem} "
                                f"{file.stem}) or {file.name} alone.")
    return hints


def _parameter(raw: Any, parameter_id: str, where: str, problems: list[str]) -> Parameter | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: got {raw!r}; expected an inline table "
                        "{ value = ..., range = [low, high], basis = ..., source = ... }.")
        return None
    unknown = [k for k in raw if k not in _PARAMETER_KEYS]
    for key in unknown:
        problems.append(f"{where}.{key}: unknown key; expected one of {one_of(sorted(_PARAMETER_KEYS))}.")
    before = len(problems)
    _check_value_and_range(raw, where, problems)
    value, bounds = raw.get("value"), raw.get("range")
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


def _check_value_and_range(raw: dict, where: str, problems: list[str]) -> None:
    """A parameter's ``value`` (a number, not NaN) and ``range`` (two numbers), each present."""
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
        row = _table_row(name, row, f"{where}.table[{i}]", parents, problems)
        if row is not None:
            rows.append(row)
    return TableCPD(rows=tuple(rows))


def _table_row(name: str, row: Any, row_where: str, parents: tuple[str, ...],
               problems: list[str]) -> TableRow | None:
    """One ``[[nodes.NAME.table]]`` row, or ``None`` (with problems) when its ``when`` cannot be read."""
    if not isinstance(row, dict):
        problems.append(f"{row_where}: got {row!r}; expected a table with when and probability.")
        return None
    for key in row:
        if key not in ("when", "probability"):
            problems.append(f"{row_where}.{key}: unknown key; expected when, probability.")
    config = _row_configuration(name, row.get("when", {}), row_where, parents, problems)
    if config is None:
        return None
    probability_raw = row.get("probability")
    if not isinstance(probability_raw, dict):
        problems.append(f"{row_where}.probability: got {probability_raw!r}; expected a table with one "
                        "entry per state.")
        return None
    probability = {}
    for state, entry in probability_raw.items():
        if entry == "remainder":
            probability[state] = None
            continue
        parameter_id = table_parameter_id(name, state, parents, config)
        parameter = _parameter(entry, parameter_id, f"{row_where}.probability.{state}", problems)
        if parameter is not None:
            probability[state] = parameter
    return TableRow(when=config, probability=probability, location=row_where)


def _row_configuration(name: str, when: Any, row_where: str, parents: tuple[str, ...],
                       problems: list[str]) -> tuple[str, ...] | None:
    """The parent states a row's ``when`` names, in parent order; ``None`` (with problems) if it cannot."""
    if not isinstance(when, dict):
        problems.append(f"{row_where}.when: got {when!r}; expected an inline table naming each parent's state.")
        return None
    bad_parents = [p for p in when if p not in parents]
    for parent in bad_parents:
        problems.append(f"{row_where}.when.{parent}: {parent!r} is not a parent of {name!r}; expected "
                        f"{one_of(parents) or 'no parents (when = {})'}.")
    missing = [p for p in parents if p not in when]
    if missing:
        problems.append(f"{row_where}.when: no state given for parent(s) {one_of(missing)}; expected every "
                        "parent named (configurations are never positional).")
    if bad_parents or missing:
        return None
    config = tuple(when[p] for p in parents)
    if not all(isinstance(s, str) for s in config):
        problems.append(f"{row_where}.when: got {when!r}; expected state names (strings).")
        return None
    return config


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
        problems.append(f"{where}: got {raw!r}; expected {{ state = ..., value = ..., range = [..], source = ... }} "
                        "(or \"none\" in an overlay, to drop an earlier file's figure).")
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


def _figure(raw: Any, where: str, problems: list[str]) -> tuple[float, float, float] | None:
    """``value`` and ``range`` of a published figure, checked."""
    value, bounds = raw.get("value"), raw.get("range")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        problems.append(f"{where}.value: got {value!r}; expected a number in [0, 1].")
        return None
    if bounds is None:
        bounds = [value, value]
    if (not isinstance(bounds, list) or len(bounds) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
            or not 0.0 <= bounds[0] <= bounds[1] <= 1.0):
        problems.append(f"{where}.range: got {bounds!r}; expected [low, high] with 0 <= low <= high <= 1.")
        return None
    return float(value), float(bounds[0]), float(bounds[1])


def _published_list(raw: Any, label: str, build, key: str, problems: list[str]) -> list:
    if not isinstance(raw, list):
        problems.append(f"{label}, {key}: got {type(raw).__name__}; expected an array of tables ([[{key}]]).")
        return []
    entries = [build(item, f"{label}, {key}[{i}]", problems) for i, item in enumerate(raw)]
    return [entry for entry in entries if entry is not None]


def _conditional(raw: Any, where: str, problems: list[str]) -> ConditionalPrevalence | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: got {raw!r}; expected a table with node, state, given, value, range and source.")
        return None
    _unknown(raw, {"node", "state", "given", "value", "range", "source", "note"}, where, problems)
    node, state, given = raw.get("node"), raw.get("state"), raw.get("given", {})
    if not isinstance(node, str) or not isinstance(state, str):
        problems.append(f"{where}: got node = {node!r}, state = {state!r}; expected a node name and one of its states.")
        return None
    if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
        problems.append(f"{where}.given: got {given!r}; expected a table of node = \"state\".")
        return None
    figure = _figure(raw, where, problems)
    if figure is None:
        return None
    return ConditionalPrevalence(node=node, state=state, given=dict(given), value=figure[0], low=figure[1],
                                 high=figure[2], source=str(raw.get("source", "")), location=where)


def _silent_share(name: str, raw: Any, where: str, problems: list[str]) -> SilentShare | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: got {raw!r}; expected {{ value = ..., range = [..], source = ..., note = ... }}.")
        return None
    _unknown(raw, {"value", "range", "source", "note"}, where, problems)
    figure = _figure(raw, where, problems)
    if figure is None:
        return None
    return SilentShare(node=name, value=figure[0], low=figure[1], high=figure[2], source=str(raw.get("source", "")),
                       note=str(raw.get("note", "")), location=where)


def _unknown(raw: dict, allowed: set[str], where: str, problems: list[str]) -> None:
    for key in raw:
        if key not in allowed:
            problems.append(f"{where}.{key}: unknown key; expected one of {one_of(sorted(allowed))}.")


def _node_of_id(parameter_id: str) -> str:
    """The node a parameter id belongs to: ``P(node=...)``, ``leak(node)``, ``link(node<-...)``."""
    inner = parameter_id.partition("(")[2]
    for stop in ("<-", "=", "|", ")"):
        inner = inner.partition(stop)[0]
    return inner


def _apply_overrides(spec: Spec, overrides: list[tuple[str, Any, str, int]], defined: dict[str, tuple[int, int]],
                     late_bases: dict[str, str], problems: list[str]) -> Spec:
    """Apply ``[parameters]`` overrides in file order.

    ``defined[node]`` is (first, last) position of the files defining the node. An override
    applies when the node's last definition comes before it; a later file that redefines the
    node wholly supersedes it; an override before any definition is an error.
    """
    if not overrides:
        return spec
    replacements: dict[str, Parameter] = {}
    known = parameters_by_id(spec)
    for parameter_id, raw, label, position in overrides:
        where = f'{label}, parameters."{parameter_id}"'
        span = defined.get(known[parameter_id][0] if parameter_id in known else _node_of_id(parameter_id))
        if span is not None and span[0] <= position < span[1]:
            continue  # a later file replaces the node wholly, and this override with it
        if (parameter_id not in known or span is None or span[0] > position) and label in late_bases:
            if late_bases[label] not in problems:
                problems.append(late_bases[label])
            continue
        if parameter_id not in known or span is None or span[0] > position:
            close = difflib.get_close_matches(parameter_id, list(known), n=2, cutoff=0.8)
            hint = f" (did you mean {one_of(close)}?)" if close and parameter_id not in known else ""
            problems.append(f"{where}: no earlier file defines this parameter id{hint}; expected an id listed by "
                            "`bayescramp priors check --parameters` or Model.parameters()['id'].")
            continue
        parameter = _parameter(raw, parameter_id, where, problems)
        if parameter is not None:
            replacements[parameter_id] = parameter
    if problems:
        return spec
    return replace_parameters(spec, replacements)

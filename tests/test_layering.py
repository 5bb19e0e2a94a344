"""The layer contract of the README's module map, checked on the source (``ast``, no import needed).

A module imports only from layers below it (never a sibling in its own layer, never a layer
above, lazy imports inside functions included); the engine's implementation ``inference/``
is part of the engine's layer and imports only below it, its own modules in their order.
Third-party packages with a narrow job are imported only where the README says.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bayescramp"
README = PACKAGE.parent / "README.md"

#: Layers, lowest first: the README's module map (section "Development") in code.
LAYERS = [
    ["_errors", "_arguments", "_regular_file"],
    ["spec", "evidence", "tabular"],
    ["priors", "reference", "codebook", "engine"],
    ["simulate", "scoring"],
    ["explain", "sensitivity", "uncertainty"],
    ["survey", "validation", "posterior"],
    ["prevalence", "learning"],
    ["model"],
    ["scenario", "distributed", "plotting"],
    ["cli"],
    ["__main__", "__init__"],   # the package's entry points, on top
]
#: The order inside the engine's implementation package (each imports only those before it).
INFERENCE = ["graph", "tree", "core", "condition", "network", "__init__"]
#: L0 modules may import each other in this order.
FOUNDATION = ["_errors", "_arguments", "_regular_file"]
#: Third-party packages allowed only in these modules (lazily where the README says so).
ONLY_IN = {
    "pgmpy": {"reference"},
    "matplotlib": {"plotting"},
    "dask": {"distributed"},
    "distributed": {"distributed"},
    "pyarrow": {"evidence", "survey", "distributed"},
}
#: Imported only inside functions, so ``import bayescramp`` stays fast and works without them.
LAZY = {"pgmpy", "matplotlib"}
#: Package modules imported only inside functions (they import an optional dependency at their top).
LAZY_MODULES = {"distributed"}
#: ``from . import __version__`` reads package metadata, not a module: allowed anywhere.
METADATA = {"__version__"}


def _modules() -> dict[str, Path]:
    """Dotted name inside the package (``scoring``, ``inference.tree``) -> file."""
    return {".".join(path.relative_to(PACKAGE).with_suffix("").parts): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> list[tuple[str, str, bool]]:
    """``(kind, target, at top level)`` per import: kind ``package`` (a bayescramp module) or ``external``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")[:-1]
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        top = id(node) in top_level
        if isinstance(node, ast.Import):
            found.extend(("external", alias.name.split(".")[0], top) for alias in node.names
                         if not alias.name.startswith("bayescramp"))
            found.extend(("package", alias.name.removeprefix("bayescramp."), top) for alias in node.names
                         if alias.name.startswith("bayescramp."))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                module = node.module or ""
                if module.startswith("bayescramp"):
                    found.append(("package", module.removeprefix("bayescramp").lstrip("."), top))
                else:
                    found.append(("external", module.split(".")[0], top))
                continue
            base = here[:len(here) - (node.level - 1)]
            if node.module:
                found.append(("package", ".".join(base + [node.module]), top))
            else:
                found.extend(("package", ".".join(base + [alias.name]), top) for alias in node.names)
    return found


def _layer(module: str) -> int:
    top = module.split(".")[0]
    if top == "inference":
        top = "engine"
    for level, names in enumerate(LAYERS):
        if top in names:
            return level
    raise AssertionError(f"module {module!r} is in no layer of tests/test_layering.py; add it to LAYERS and to the "
                         "README's module map")


def _allowed(source: str, target: str) -> bool:
    """May ``source`` import ``target`` (both dotted names inside the package)?"""
    if target in METADATA or target == "":
        return target in METADATA
    if source.startswith("inference.") and target.startswith("inference."):
        return INFERENCE.index(target.split(".")[1]) < INFERENCE.index(source.split(".")[1])
    if source == "engine" and target.startswith("inference"):
        return True
    if source in FOUNDATION and target in FOUNDATION:
        return FOUNDATION.index(target) < FOUNDATION.index(source)
    return _layer(target) < _layer(source)


def test_every_module_is_in_a_layer():
    for name in _modules():
        _layer(name)


def test_every_layer_module_exists():
    names = {name.split(".")[0] for name in _modules()}
    assert {m for layer in LAYERS for m in layer} <= names


@pytest.mark.parametrize("name", sorted(_modules()))
def test_modules_import_only_from_layers_below(name):
    path = _modules()[name]
    for kind, target, top in _imports(name, path):
        if kind != "package":
            continue
        target = target.removesuffix(".__init__")
        assert not (top and target in LAZY_MODULES), (f"{path.relative_to(PACKAGE.parent)} imports {target} at module "
                                                      "level; expected a lazy import (dask is optional)")
        assert _allowed(name, target), (f"{path.relative_to(PACKAGE.parent)} imports {target!r}: layer "
                                        f"{_layer(target)} is not below {name!r}'s layer {_layer(name)}")


@pytest.mark.parametrize("name", sorted(_modules()))
def test_narrow_dependencies_stay_in_their_modules(name):
    path = _modules()[name]
    for kind, target, top in _imports(name, path):
        if kind != "external" or target not in ONLY_IN:
            continue
        assert name in ONLY_IN[target], f"{path.relative_to(PACKAGE.parent)} imports {target}; only " \
                                        f"{', '.join(sorted(ONLY_IN[target]))} may"
        assert not (top and target in LAZY), f"{path.relative_to(PACKAGE.parent)} imports {target} at module level; " \
                                             "expected a lazy import inside the function that needs it"


def test_the_readme_module_map_lists_the_same_layers():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Development"):]
    written = {int(level): [m.strip() for m in names.split(",")]
               for level, names in re.findall(r"^\s+L(\d)\s+(.+?)(?:\s{2,}|$)", section, flags=re.MULTILINE)}
    expected = {level: names for level, names in enumerate(LAYERS[:-1])}
    assert written == expected

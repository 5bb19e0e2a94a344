"""Checks of public arguments, so a wrong type is one sentence (never a raw ``TypeError``).

Each check names the argument, the value received and what was expected, in the voice of
:mod:`bayescramp._errors`, and returns the value in the form the caller works with.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import os
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
import pandas as pd

from ._errors import InputError, one_of

__all__ = ["is_number", "row_weights", "as_node_list", "as_generator", "as_fraction", "as_path", "as_flag", "renamed",
           "RENAMED_SINCE", "REMOVED_IN"]

#: The release that renamed keywords (the public vocabulary, README "API conventions").
RENAMED_SINCE = "0.2"
#: The release in which the old spellings stop working.
REMOVED_IN = "0.3"

_Function = TypeVar("_Function", bound=Callable[..., Any])


def _shown(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def is_number(value: Any) -> bool:
    """A real number of any kind (Python, numpy scalar, Decimal, Fraction), but not a bool.

    Examples
    --------
    >>> [is_number(v) for v in (0.8, np.float32(0.8), np.int64(1), Decimal("0.5"), True, "1")]
    [True, True, True, True, False, False]
    """
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (numbers.Real, Decimal))


def as_node_list(value: Any, *, argument: str, caller: str,
                 expected: str = "a node name or a list of node names") -> list[str]:
    """A node name or a sequence of node names, as a list (names are not checked against a network here).

    Examples
    --------
    >>> as_node_list("fatigue", argument="targets", caller="score")
    ['fatigue']
    >>> as_node_list(5, argument="targets", caller="score")
    Traceback (most recent call last):
    ...
    bayescramp._errors.InputError: score: targets got 5 (int); expected a node name or a list of node names.
    """
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple, np.ndarray)) or (hasattr(value, "__iter__") and hasattr(value, "__len__")
                                                        and not isinstance(value, (dict, bytes))):
        names = list(value)
        bad = [v for v in names if not isinstance(v, str)]
        if bad:
            raise InputError(f"{caller}: {argument} holds {_shown(bad[0])}; expected {expected} (text).")
        return names
    raise InputError(f"{caller}: {argument} got {_shown(value)}; expected {expected}.")


def as_generator(value: Any, *, argument: str = "rng") -> np.random.Generator:
    """A numpy Generator from ``None``, a whole-number seed >= 0, a Generator, BitGenerator or SeedSequence.

    Examples
    --------
    >>> type(as_generator(1)).__name__
    'Generator'
    >>> as_generator(-1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayescramp._errors.InputError: rng: got -1 (int); expected a numpy random Generator or a whole-number seed >= 0 ...
    """
    if value is None or isinstance(value, (np.random.Generator, np.random.BitGenerator, np.random.SeedSequence)):
        return np.random.default_rng(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and value >= 0:
        return np.random.default_rng(int(value))
    raise InputError(f"{argument}: got {_shown(value)}; expected a numpy random Generator or a whole-number seed >= 0 "
                     f"(e.g. {argument}=1), or None for fresh randomness.")


def as_fraction(value: Any, *, argument: str, caller: str, below_one: bool = False) -> float:
    """A number in [0, 1] (or [0, 1) with ``below_one``), as a float.

    Examples
    --------
    >>> as_fraction(np.float32(0.25), argument="missing", caller="simulate")
    0.25
    """
    interval = "[0, 1)" if below_one else "[0, 1]"
    if is_number(value):
        number = float(value)
        if 0.0 <= number and (number < 1.0 if below_one else number <= 1.0):
            return number
    raise InputError(f"{caller}: {argument} got {_shown(value)}; expected a fraction in {interval}.")


def as_path(value: Any, *, argument: str, caller: str) -> Path:
    """A path from text or any ``os.PathLike``.

    Examples
    --------
    >>> as_path("model.bif", argument="path", caller="export").name
    'model.bif'
    """
    if isinstance(value, (str, os.PathLike)) and str(value):
        return Path(value)
    raise InputError(f"{caller}: {argument} got {_shown(value)}; expected a file path (text or pathlib.Path).")


def as_flag(value: Any, *, argument: str, caller: str) -> bool:
    """``True`` or ``False`` (numpy bools too); anything else is refused rather than read by its truthiness.

    Examples
    --------
    >>> as_flag(np.True_, argument="truth", caller="simulate")
    True
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise InputError(f"{caller}: {argument} got {_shown(value)}; expected True or False.")


def row_weights(table: Any, weights: Any, *, caller: str) -> np.ndarray:
    """Per-row weights from a column of ``table`` or values, one per row (ones when ``None``).

    Examples
    --------
    >>> import pandas as pd
    >>> row_weights(pd.DataFrame({"w": [1, 2.5]}), "w", caller="plot_cohort").tolist()
    [1.0, 2.5]
    """
    if weights is None:
        return np.ones(len(table))
    if isinstance(weights, str):
        if weights not in table.columns:
            raise InputError(f"{caller}: no column {weights!r} for weights; expected one of {one_of(table.columns)}.")
        # a non-numeric cell becomes NaN here so that the check below names it
        values = pd.to_numeric(table[weights], errors="coerce").to_numpy(dtype=float)
        name = repr(weights)
    else:
        values = np.asarray(weights, dtype=float)
        name = "weights"
        if values.shape != (len(table),):
            raise InputError(f"{caller}: weights have shape {values.shape}; expected one per row ({len(table)}).")
    bad = ~(np.isfinite(values) & (values >= 0))
    if bad.any():
        raise InputError(f"{caller}: {name} at row {table.index[int(np.flatnonzero(bad)[0])]} is "
                         f"{float(values[bad][0])!r}; expected a finite weight >= 0 on every row.")
    return values


def renamed(*, positional: tuple[str, ...] = (), since: str = RENAMED_SINCE, removed: str = REMOVED_IN,
            **old_to_new: str) -> Callable[[_Function], _Function]:
    """Keep old keyword spellings (and formerly positional options) working for one release, with a warning.

    ``@renamed(target="targets")`` accepts ``target=`` as ``targets=`` and warns with a
    :class:`DeprecationWarning` naming the new spelling; giving both is an
    :class:`~bayescramp.InputError`. ``positional=("targets", "threshold")`` names keyword-only
    options that used to be passed by position, in their old order: extra positional
    arguments are taken as those options, with the same warning.

    Examples
    --------
    >>> @renamed(seed="rng", positional=("rng",))
    ... def draw(n, *, rng=None):
    ...     return n, rng
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     draw(3, seed=1), draw(3, 2)
    ((3, 1), (3, 2))
    >>> print(caught[0].message)
    draw: seed= is deprecated since 0.2 and will be removed in 0.3; use rng= instead.
    """

    def decorate(function: _Function) -> _Function:
        signature = inspect.signature(function)
        n_positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                           for p in signature.parameters.values())
        has_varargs = any(p.kind is p.VAR_POSITIONAL for p in signature.parameters.values())
        name = function.__qualname__.replace(".<locals>", "").split(".")[-2:]
        caller = ".".join(name) if name[0][:1].isupper() else name[-1]

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if positional and not has_varargs and len(args) > n_positional:
                extra = args[n_positional:]
                if len(extra) > len(positional):
                    raise InputError(f"{caller}: got {len(args)} positional arguments; expected at most "
                                     f"{n_positional + len(positional)} (pass options by keyword).")
                args, options = args[:n_positional], positional[:len(extra)]
                twice = [option for option in options if option in kwargs]
                if twice:
                    raise InputError(f"{caller}: got {twice[0]} both by position and as {twice[0]}=; expected it "
                                     f"once, as {twice[0]}=.")
                warnings.warn(f"{caller}: passing {' and '.join(options)} by position is deprecated since {since} "
                              f"and will be removed in {removed}; use {'=, '.join(options)}= instead.",
                              DeprecationWarning, stacklevel=2)
                kwargs.update(zip(options, extra))
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise InputError(f"{caller}: got both {old}= and {new}=; expected only {new}= ({old}= is "
                                         "its old spelling).")
                    warnings.warn(f"{caller}: {old}= is deprecated since {since} and will be removed in "
                                  f"{removed}; use {new}= instead.", DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        wrapper.renamed_keywords = dict(old_to_new)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate

"""Checks of public arguments, so a wrong type is one sentence (never a raw ``TypeError``).

Each check names the argument, the value received and what was expected, in the voice of
:mod:`bayescramp._errors`, and returns the value in the form the caller works with.
"""

from __future__ import annotations

import numbers
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import InputError

__all__ = ["is_number", "as_node_list", "as_generator", "as_fraction", "as_path", "as_flag"]


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

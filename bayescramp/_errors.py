"""Exceptions raised by bayescramp.

Every error is a ``ValueError`` subclass whose message is one or more sentences of
the shape *where* (file, row, column, key path), *what was received*, *what was
expected*, and where it helps *how to fix it*.
"""

from __future__ import annotations

__all__ = ["BayescrampError", "SpecError", "EvidenceError", "InputError", "UnmatchedColumnsWarning"]


class BayescrampError(ValueError):
    """Base class of every bayescramp error.

    Parameters
    ----------
    problems : str or list of str
        One sentence per problem; all are kept in ``problems`` and joined in the message.
    """

    def __init__(self, problems: str | list[str]):
        if isinstance(problems, str):
            problems = [problems]
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))


class SpecError(BayescrampError):
    """A prior file or model specification is invalid."""


class EvidenceError(BayescrampError):
    """Evidence names an unknown node or state, or is impossible under the model."""


class InputError(BayescrampError):
    """An input file, table or codebook cannot be read as asked."""


class UnmatchedColumnsWarning(UserWarning):
    """A table has columns that look like evidence (near a node's name) but are not used.

    Raised as an error instead with ``unmatched="error"`` (``--unmatched error``); silenced
    with ``unmatched="ignore"``.
    """


def one_of(values) -> str:
    """Format the valid values for an error sentence: ``a, b, c``."""
    return ", ".join(str(v) for v in values)

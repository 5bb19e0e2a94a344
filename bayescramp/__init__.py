"""bayescramp: exact Bayesian-network posteriors of nutrient deficiencies behind muscle cramps.

Not a diagnostic device: the posteriors are only as good as the priors in ``priors/``,
which users should read and question.
"""

from ._errors import BayescrampError, EvidenceError, InputError, SpecError, UnmatchedColumnsWarning
from .codebook import Codebook, load_codebook
from .learning import FitResult, FitWarning
from .model import Model, Posterior, load_model
from .prevalence import prevalence
from .scenario import Comparison, compare
from .survey import ScoreSummary, score_file
from .validation import ValidationReport, validate

__version__ = "0.1.0"


def score_dask(ddf, **options):
    """Score a Dask DataFrame partition by partition; see :func:`bayescramp.distributed.score_dask`.

    Dask is imported only when this is called, so ``import bayescramp`` stays fast and works
    without it (``pip install "bayescramp[dask]"``).

    Examples
    --------
    >>> import dask.dataframe as dd, pandas as pd
    >>> frame = dd.from_pandas(pd.DataFrame({"fatigue": ["yes", "no"]}), npartitions=1)
    >>> score_dask(frame).compute(scheduler="sync")["status"].tolist()
    ['ok', 'ok']
    """
    try:
        from .distributed import score_dask as _score_dask
    except ImportError as error:
        raise InputError(f"score_dask: {error}; expected dask installed "
                         "(python -m pip install \"bayescramp[dask]\").") from None

    return _score_dask(ddf, **options)


__all__ = [
    "load_model",
    "Model",
    "Posterior",
    "score_file",
    "ScoreSummary",
    "load_codebook",
    "Codebook",
    "score_dask",
    "prevalence",
    "compare",
    "Comparison",
    "FitResult",
    "FitWarning",
    "validate",
    "ValidationReport",
    "BayescrampError",
    "SpecError",
    "EvidenceError",
    "InputError",
    "UnmatchedColumnsWarning",
    "__version__",
]

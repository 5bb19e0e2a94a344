"""bayescramp: exact Bayesian-network posteriors of nutrient deficiencies behind muscle cramps.

Not a diagnostic device: the posteriors are only as good as the priors in ``priors/``,
which users should read and question.
"""

from ._errors import BayescrampError, EvidenceError, InputError, SpecError
from .model import Model, Posterior, load_model

__version__ = "0.1.0"

__all__ = [
    "load_model",
    "Model",
    "Posterior",
    "BayescrampError",
    "SpecError",
    "EvidenceError",
    "InputError",
    "__version__",
]

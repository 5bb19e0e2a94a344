"""Validation on simulated cohorts: simulate with hidden truth, score, measure discrimination and calibration.

A cohort is forward-sampled from one prior set (the *truth*), its survey columns (blanked at
random with probability ``missing``) are scored with another (the same by default), and each
target's posteriors are compared with the hidden truth:

* **AUROC**: probability that a random person with the condition scores higher than a random
  person without it (Mann-Whitney U from average ranks; ties count one half).
* **Brier score**: mean squared difference between the posterior and the 0/1 truth (lower is
  better); ``brier_skill`` = 1 - Brier / Brier of always predicting the observed prevalence.
* **Calibration slope and intercept** (logistic recalibration, fitted by maximum likelihood
  with Newton's method in :func:`scipy.optimize.minimize`): the slope ``b`` of ``logit P(y) = a + b logit(p)``
  (1 is ideal; below 1 the posteriors are too extreme, above 1 too timid), and the
  calibration-in-the-large intercept ``a`` of ``logit P(y) = a + logit(p)`` with the slope
  fixed at 1 (0 is ideal; positive means the model under-predicts). Both come with standard
  errors from the observed information, so "within sampling error" can be judged.
* **Expected calibration error (ECE)**: ``sum_b n_b / n * |mean predicted_b - observed rate_b|``
  over ``n_bins`` bins of *equal mass* (each bin holds about ``n / n_bins`` people, sorted by
  posterior; equal-width bins would put nearly everyone in the first bin for rare conditions)
  or, on request, equal width. ECE is positive even for a perfectly calibrated model because
  of sampling noise; ``ece_noise`` is the value expected from noise alone,
  ``sum_b n_b / n * sqrt(2 / pi) * sqrt(p_b (1 - p_b) / n_b)``.

**Weights** (``weights=``: survey weights, e.g. to validate against laboratory truth in a weighted
survey such as NHANES through :func:`discrimination_and_calibration`): every metric becomes its
population version. AUROC is the weighted probability
``sum_{i pos, j neg} w_i w_j [p_i > p_j] + 1/2 [p_i = p_j]`` over ``sum_pos w * sum_neg w``; the
Brier score, prevalence and mean prediction are weighted means; the logistic recalibration
maximises the weighted (pseudo) likelihood with the weights rescaled to add up to ``n`` (so the
standard errors treat rows as independent: they are not design-based); equal-mass bins hold
equal shares of the weight, and each bin's rate, mean prediction and Wilson interval are
weighted, with Kish's effective size ``(sum w)^2 / sum w^2`` in place of ``n`` for the
intervals and ``ece_noise``. Without weights every number is as before.

When truth and scoring use the same priors the posteriors are calibrated by construction, so
the metrics show sampling error only; with mismatched priors (truth from ``older_adults``,
scoring with ``default``) they show the cost of scoring a population with the wrong priors.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ._arguments import as_fraction, as_generator, as_node_list, renamed
from ._errors import InputError, one_of
from .engine import CompiledNetwork, compile_spec, propagate_codes
from .evidence import BatchEvidence, default_alphabet
from .priors import load_spec
from .scoring import default_targets, target_columns
from .simulate import sample_codes
from .spec import Spec
from .tabular import atomic_path

__all__ = ["ValidationReport", "validate", "discrimination_and_calibration", "reliability_table", "write_report",
           "METRIC_COLUMNS", "BINNINGS"]

METRIC_COLUMNS = ["target", "state", "n", "prevalence", "mean_predicted", "auroc", "brier", "brier_skill",
                  "calibration_intercept", "intercept_se", "calibration_slope", "slope_se", "ece", "ece_noise"]
BINNINGS = ("equal_mass", "equal_width")
#: Posteriors are clipped to [EPSILON, 1 - EPSILON] before taking logits in the recalibration fit.
EPSILON = 1e-12


@dataclass
class ValidationReport:
    """What :func:`validate` measured.

    Attributes
    ----------
    metrics : DataFrame
        One row per target (:data:`METRIC_COLUMNS`).
    reliability : DataFrame
        One row per target and bin: ``target``, ``bin``, ``n``, ``low``/``high`` (posterior
        range of the bin), ``mean_predicted``, ``observed_rate`` and its Wilson 95% interval
        ``lower``/``upper``.
    settings : dict
        Scoring and truth prior files, ``n``, ``seed``, ``missing``, ``binning``, ``n_bins``,
        and ``n_impossible`` (simulated rows the scoring model calls impossible; left out).
    """

    metrics: pd.DataFrame
    reliability: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """A Markdown report: settings, the metrics table, and a verdict per target."""
        s = self.settings
        lines = ["# Validation on a simulated cohort", "",
                 f"- truth simulated from: {', '.join(s['truth_priors'])}",
                 f"- scored with: {', '.join(s['priors'])}",
                 f"- people: {s['n']}, seed: {s['seed']}, blank survey cells: {s['missing']:.0%}, "
                 f"rows impossible under the scoring model (left out): {s['n_impossible']}",
                 f"- calibration bins: {s['n_bins']} {s['binning'].replace('_', '-')}", "",
                 "| target | prevalence | mean predicted | AUROC | Brier | intercept (SE) | slope (SE) | ECE "
                 "(noise) |", "|---|---|---|---|---|---|---|---|"]
        for row in self.metrics.itertuples():
            lines.append(f"| {row.target} | {row.prevalence:.4f} | {row.mean_predicted:.4f} | "
                         f"{_number(row.auroc, '.3f')} | {row.brier:.4f} | "
                         f"{_number(row.calibration_intercept, '+.3f')} "
                         f"({_number(row.intercept_se, '.3f')}) | {_number(row.calibration_slope, '.3f')} "
                         f"({_number(row.slope_se, '.3f')}) | {row.ece:.4f} ({row.ece_noise:.4f}) |")
        lines += ["", "Intercept > 0: the model under-predicts (< 0: over-predicts). Slope < 1: posteriors too "
                      "extreme (> 1: too timid). ECE is compared with the value expected from sampling noise alone.",
                  ""]
        for row in self.metrics.itertuples():
            lines.append(f"- {row.target}: {_verdict(row)}")
        return "\n".join(lines) + "\n"


def _verdict(row) -> str:
    problems, fine = [], []
    if not np.isfinite(row.intercept_se):
        problems.append("intercept not estimable (everyone or no one has it)")
    elif abs(row.calibration_intercept) > 3 * row.intercept_se:
        size = abs(row.calibration_intercept) / row.intercept_se
        problems.append(f"{'under' if row.calibration_intercept > 0 else 'over'}-predicts (intercept "
                        f"{row.calibration_intercept:+.2f}, {size:.0f} SE)")
    else:
        fine.append("intercept within 3 SE of 0")
    if not np.isfinite(row.slope_se):
        problems.append("slope not estimable (the posterior hardly varies between people)")
    elif abs(row.calibration_slope - 1) > 3 * row.slope_se:
        problems.append(f"posteriors too {'extreme' if row.calibration_slope < 1 else 'timid'} (slope "
                        f"{row.calibration_slope:.2f}, {abs(row.calibration_slope - 1) / row.slope_se:.0f} SE from 1)")
    else:
        fine.append("slope within 3 SE of 1")
    if not problems:
        return "calibrated within sampling error (" + ", ".join(fine) + ")."
    return "; ".join(problems + fine) + "."


def _number(value: float, spec: str) -> str:
    return format(value, spec) if np.isfinite(value) else "n/a"


def _spec(priors: Any, what: str) -> Spec:
    if priors is None:
        return load_spec()
    if isinstance(priors, Spec):
        return priors
    if hasattr(priors, "spec") and isinstance(priors.spec, Spec):
        return priors.spec
    if isinstance(priors, (str, os.PathLike)):
        return load_spec(priors)
    if isinstance(priors, Sequence) and all(isinstance(p, (str, os.PathLike)) for p in priors):
        return load_spec(*priors)
    raise InputError(f"validate: {what} got {type(priors).__name__}; expected None (the bundled default), prior file "
                     "paths or bundled names, a Spec, or a Model.")


def _check_arguments(n, missing, n_bins, binning) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"validate: n got {n!r}; expected a positive whole number of people.")
    if not 0.0 <= missing < 1.0:
        raise InputError(f"validate: missing got {missing!r}; expected a fraction in [0, 1).")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise InputError(f"validate: n_bins got {n_bins!r}; expected a positive whole number.")
    if binning not in BINNINGS:
        raise InputError(f"validate: binning got {binning!r}; expected one of {one_of(BINNINGS)}.")


def _metrics(scoring: CompiledNetwork, targets: Sequence[str], sampled: dict, marginals: dict, keep: np.ndarray,
             n_bins: int, binning: str, weights: np.ndarray | None) -> tuple[list[dict], list[pd.DataFrame]]:
    """Metric rows and reliability tables of every target column, on the rows the scoring model allows."""
    rows, bins = [], []
    for _, node, k in target_columns(scoring, targets):
        truth = sampled[node][keep] == k
        predicted = marginals[node][keep, k]
        rows.append({"target": node, "state": scoring.states[node][k],
                     **discrimination_and_calibration(truth, predicted, n_bins=n_bins, binning=binning,
                                                      weights=weights)})
        table = reliability_table(truth, predicted, n_bins=n_bins, binning=binning, weights=weights)
        table.insert(0, "state", scoring.states[node][k])
        table.insert(0, "target", node)
        bins.append(table)
    return rows, bins


def _check_same_nodes(truth: CompiledNetwork, scoring: CompiledNetwork) -> None:
    for name in scoring.names:
        if name not in truth.states:
            raise InputError(f"validate: node {name!r} of the scoring priors is missing from the truth priors; "
                             "expected two prior sets over the same nodes (an overlay changes numbers only).")
        if truth.states[name] != scoring.states[name]:
            raise InputError(f"validate: node {name!r} has states {one_of(truth.states[name])} in the truth priors but "
                             f"{one_of(scoring.states[name])} in the scoring priors; expected the same states.")


def _logistic_fit(x: np.ndarray, count: np.ndarray, positive: np.ndarray, *, fit_slope: bool) -> tuple:
    """Maximum-likelihood ``logit P(y) = a + b x`` (``b = 1`` unless ``fit_slope``) on grouped data.

    Returns ``(a, se_a, b, se_b)``; NaN where a parameter is not identifiable.
    """
    # scipy is imported here, not at module level: `import bayescramp` (and the CLI) stays fast
    from scipy.optimize import minimize
    from scipy.special import expit

    design = np.column_stack([np.ones_like(x), x]) if fit_slope else np.ones((len(x), 1))
    offset = np.zeros_like(x) if fit_slope else x

    def objective(theta: np.ndarray):
        eta = offset + design @ theta
        value = float(np.sum(count * np.logaddexp(0.0, eta) - positive * eta))
        gradient = design.T @ (count * expit(eta) - positive)
        return value, gradient

    def hessian(theta: np.ndarray) -> np.ndarray:
        p = expit(offset + design @ theta)
        return (design * (count * p * (1 - p))[:, None]).T @ design

    start = np.array([0.0, 1.0]) if fit_slope else np.array([0.0])
    fit = minimize(objective, start, jac=True, hess=hessian, method="Newton-CG")
    information = hessian(fit.x)
    converged = fit.success or np.abs(objective(fit.x)[1]).max() <= 1e-7 * count.sum()
    if not converged or np.linalg.cond(information) > 1e12:
        return (math.nan,) * 4
    se = np.sqrt(np.diag(np.linalg.inv(information)))
    if fit_slope:
        return float(fit.x[0]), float(se[0]), float(fit.x[1]), float(se[1])
    return float(fit.x[0]), float(se[0]), 1.0, 0.0


def _bins(predicted: np.ndarray, n_bins: int, binning: str, weights: np.ndarray | None = None) -> np.ndarray:
    if binning == "equal_width":
        return np.minimum((predicted * n_bins).astype(np.int64), n_bins - 1)
    order = np.argsort(predicted, kind="stable")
    bins = np.empty(len(predicted), dtype=np.int64)
    if weights is None:
        bins[order] = (np.arange(len(predicted)) * n_bins) // max(1, len(predicted))
    else:
        before = np.cumsum(weights[order]) - weights[order]
        total = float(weights.sum())
        bins[order] = np.minimum((before * n_bins / total).astype(np.int64) if total > 0 else 0, n_bins - 1)
    return bins


def _weights(weights, n: int, caller: str) -> np.ndarray | None:
    """Weights as floats (``None`` stays ``None``); wrong length, missing or negative ones are errors."""
    if weights is None:
        return None
    values = np.asarray(weights, dtype=float)
    if values.shape != (n,):
        raise InputError(f"{caller}: weights have shape {values.shape}; expected one per person ({n}).")
    bad = ~(np.isfinite(values) & (values >= 0))
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise InputError(f"{caller}: weight {r} is {values[r]!r}; expected finite weights >= 0.")
    return values


def reliability_table(truth: np.ndarray, predicted: np.ndarray, *, n_bins: int = 10,
                      binning: str = "equal_mass", weights: np.ndarray | None = None) -> pd.DataFrame:
    """Observed rate against mean predicted probability per bin, with Wilson 95% intervals.

    With ``weights`` the rate and mean prediction are weighted, equal-mass bins hold equal
    shares of the weight and the Wilson interval uses Kish's effective size; ``n`` stays the
    number of people in the bin.

    Examples
    --------
    >>> table = reliability_table(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8]), n_bins=2)
    >>> table[["n", "observed_rate"]].values.tolist()
    [[2.0, 0.0], [2.0, 1.0]]
    """
    if binning not in BINNINGS:
        raise InputError(f"binning: got {binning!r}; expected one of {one_of(BINNINGS)}.")
    truth = np.asarray(truth, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    weights = _weights(weights, len(truth), "reliability_table")
    bins = _bins(predicted, n_bins, binning, weights)
    n = np.bincount(bins, minlength=n_bins).astype(float)
    w = np.ones(len(truth)) if weights is None else weights
    total = np.bincount(bins, w, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_predicted = np.bincount(bins, w * predicted, minlength=n_bins) / total
        rate = np.bincount(bins, w * truth, minlength=n_bins) / total
        size = n if weights is None else total ** 2 / np.bincount(bins, w * w, minlength=n_bins)
        z = 1.959963984540054
        centre = (rate + z * z / (2 * size)) / (1 + z * z / size)
        half = z * np.sqrt(rate * (1 - rate) / size + z * z / (4 * size * size)) / (1 + z * z / size)
    low = np.full(n_bins, np.nan)
    high = np.full(n_bins, np.nan)
    np.fmin.at(low, bins, predicted)
    np.fmax.at(high, bins, predicted)
    return pd.DataFrame({"bin": np.arange(n_bins), "n": n, "effective_n": size, "low": low, "high": high,
                         "mean_predicted": mean_predicted,
                         "observed_rate": rate, "lower": np.clip(np.fmin(centre - half, rate), 0, 1),
                         "upper": np.clip(np.fmax(centre + half, rate), 0, 1)})


def discrimination_and_calibration(truth: np.ndarray, predicted: np.ndarray, *, n_bins: int = 10,
                                   binning: str = "equal_mass", weights: np.ndarray | None = None) -> dict[str, float]:
    """AUROC, Brier score and skill, calibration intercept and slope (with SEs), ECE and its noise level.

    Parameters
    ----------
    truth : array of bool or 0/1
        Whether each person has the condition.
    predicted : array of float
        The posterior probability of the condition.
    n_bins : int
        Bins for the expected calibration error.
    binning : {"equal_mass", "equal_width"}
    weights : array of float, optional
        Survey weights: every metric becomes its weighted, population version (module docstring).

    Returns
    -------
    dict
        ``n``, ``prevalence, ``mean_predicted``, ``auroc``, ``brier``, ``brier_skill``,
        ``calibration_intercept``, ``intercept_se``, ``calibration_slope``, ``slope_se``,
        ``ece``, ``ece_noise`` (see the module docstring for how to read them).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.05, 0.5, 20000)
    >>> result = discrimination_and_calibration(rng.random(20000) < p, p)
    >>> abs(result["calibration_slope"] - 1) < 4 * result["slope_se"]
    True
    >>> weighted = discrimination_and_calibration([0, 1, 0, 1], [0.1, 0.8, 0.9, 0.7], weights=[1.0, 1.0, 3.0, 1.0])
    >>> weighted["auroc"]  # pairs (pos, neg) weighted: (1 + 1 + 0 + 0) / (2 * 4)
    0.25
    """
    truth = np.asarray(truth, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    n = len(truth)
    weights = _weights(weights, n, "discrimination_and_calibration")
    w = np.ones(n) if weights is None else weights
    total = float(w.sum())
    n_positive = float(truth.sum())
    positive_weight = float(w @ truth)
    prevalence = positive_weight / total if n and total > 0 else math.nan
    brier = float(w @ (predicted - truth) ** 2 / total) if n and total > 0 else math.nan
    reference = prevalence * (1 - prevalence)
    if 0 < n_positive < n and 0 < positive_weight < total:
        values, inverse = np.unique(predicted, return_inverse=True)
        positive_at = np.bincount(inverse, w * truth, minlength=len(values))
        negative_at = np.bincount(inverse, w * (1 - truth), minlength=len(values))
        # each positive beats the negatives below it and ties with half of those at its value
        below = np.cumsum(negative_at) - negative_at
        auroc = float(positive_at @ (below + 0.5 * negative_at)) / (positive_weight * (total - positive_weight))
        x = np.log(np.clip(predicted, EPSILON, 1 - EPSILON)) - np.log1p(-np.clip(predicted, EPSILON, 1 - EPSILON))
        values, inverse = np.unique(x, return_inverse=True)
        # weights rescaled to add up to n: a pseudo-likelihood on the sample's scale
        scaled = w * (n / total)
        count = np.bincount(inverse, scaled)
        positive = np.bincount(inverse, scaled * truth)
        intercept, intercept_se, _, _ = _logistic_fit(values, count, positive, fit_slope=False)
        if np.std(x) > 1e-6:
            _, _, slope, slope_se = _logistic_fit(values, count, positive, fit_slope=True)
        else:
            slope, slope_se = math.nan, math.nan
    else:
        auroc = intercept = intercept_se = slope = slope_se = math.nan
    table = reliability_table(truth, predicted, n_bins=n_bins, binning=binning, weights=weights)
    filled = table[table["n"] > 0]
    share = (filled["n"] / max(n, 1) if weights is None
             else pd.Series(np.bincount(_bins(predicted, n_bins, binning, weights), w, minlength=n_bins))[filled.index]
             / total)
    ece = float((share * (filled["mean_predicted"] - filled["observed_rate"]).abs()).sum())
    noise = float((share * np.sqrt(2 / np.pi) * np.sqrt(filled["mean_predicted"] * (1 - filled["mean_predicted"])
                                                         / filled["effective_n"])).sum())
    return {"n": n, "prevalence": prevalence, "mean_predicted": float(w @ predicted / total) if n else math.nan,
            "auroc": float(auroc), "brier": brier,
            "brier_skill": 1 - brier / reference if reference > 0 else math.nan,
            "calibration_intercept": intercept, "intercept_se": intercept_se, "calibration_slope": slope,
            "slope_se": slope_se, "ece": ece, "ece_noise": noise}


@renamed(seed="rng")
def validate(priors: Any = None, *, truth_priors: Any = None, n: int = 20000,
             rng: np.random.Generator | int | None = None, missing: float = 0.0,
             targets: str | Sequence[str] | None = None, n_bins: int = 10, binning: str = "equal_mass",
             weights: Sequence[float] | None = None) -> ValidationReport:
    """Simulate a cohort with hidden truth, score it, and measure discrimination and calibration per target.

    Parameters
    ----------
    priors : prior files, bundled names, Spec or Model, optional
        The model that scores (default: the bundled default priors).
    truth_priors : same kinds, optional
        The model the cohort is simulated from (default: ``priors``). Must have the same
        nodes and states, e.g. ``["default", "older_adults"]``.
    n : int
        People simulated.
    rng : numpy Generator or int seed, optional
        The randomness of the simulation (the same seed gives the same report; ``settings["seed"]``
        records it). ``seed=`` is its deprecated spelling.
    missing : float
        Probability that each survey cell is blank.
    targets : str or sequence of str, optional
        Default: the model's default targets (``meta.targets``).
    n_bins : int
        Bins for ECE and the reliability table.
    binning : {"equal_mass", "equal_width"}
    weights : array of float, optional
        One weight per simulated person (``n`` of them): weighted metrics (module docstring),
        e.g. to give the simulated cohort a survey's population mix.

    Returns
    -------
    ValidationReport
        ``.metrics`` (one row per target), ``.reliability`` (per bin), ``.settings``,
        ``.summary()`` (Markdown). Plot with :func:`bayescramp.plotting.plot_reliability`;
        save with :func:`write_report`.

    Examples
    --------
    >>> report = validate(n=2000, rng=1)
    >>> report.metrics["target"].tolist()          # the default model's targets
    ['vitamin_d_deficiency', 'iron_deficiency', 'magnesium_deficiency', 'potassium_deficiency', 'calcium_deficiency']
    """
    missing = as_fraction(missing, argument="missing", caller="validate", below_one=True)
    _check_arguments(n, missing, n_bins, binning)
    scoring_spec = _spec(priors, "priors")
    truth_spec = scoring_spec if truth_priors is None else _spec(truth_priors, "truth_priors")
    scoring = compile_spec(scoring_spec)
    truth_network = scoring if truth_spec is scoring_spec else compile_spec(truth_spec)
    _check_same_nodes(truth_network, scoring)
    targets = _checked_targets(scoring, targets)
    weights = _weights(weights, int(n), "validate")
    seed = _seed_record(rng)
    rng = as_generator(rng)
    sampled = sample_codes(truth_network, int(n), rng)
    evidence = _survey_evidence(scoring, sampled, targets, int(n), missing, rng)
    result = propagate_codes(scoring, evidence, targets=targets)
    keep = ~result.impossible
    rows, bins = _metrics(scoring, targets, sampled, result.marginals, keep, n_bins, binning,
                          None if weights is None else weights[keep])
    settings = {"priors": _file_names(scoring_spec), "truth_priors": _file_names(truth_spec),
                "n": int(n), "seed": seed, "missing": float(missing), "binning": binning, "n_bins": int(n_bins),
                "weighted": weights is not None,
                "n_impossible": int((~keep).sum())}
    return ValidationReport(metrics=pd.DataFrame(rows, columns=METRIC_COLUMNS),
                            reliability=pd.concat(bins, ignore_index=True), settings=settings)


def _checked_targets(scoring: CompiledNetwork, targets: str | Sequence[str] | None) -> list[str]:
    """The targets to validate: those given, each a node of ``scoring``, else the model's default targets."""
    targets = (default_targets(scoring, scoring.info.observable) if targets is None
               else as_node_list(targets, argument="targets", caller="validate"))
    unknown = [t for t in targets if t not in scoring.states]
    if unknown:
        raise InputError(f"validate: target {unknown[0]!r} is not a node; expected some of {one_of(scoring.names)}.")
    return targets


def _seed_record(rng: Any) -> int | str | None:
    """How ``settings["seed"]`` records ``rng``: the int seed, else what kind of Generator it was (not replayable)."""
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return int(rng)
    return None if rng is None else f"(a numpy {type(rng).__name__})"


def _survey_evidence(scoring: CompiledNetwork, sampled: Mapping[str, np.ndarray], targets: Sequence[str], n: int,
                     missing: float, rng: np.random.Generator) -> BatchEvidence:
    """The simulated survey: observable non-target nodes as answered, each cell blank with probability ``missing``."""
    # a target seen as evidence would answer itself; it is hidden truth only
    observed = [node for node in scoring.info.observable if node not in targets]
    alphabets = [default_alphabet(scoring.states[node]) for node in observed]
    codes = np.column_stack([sampled[node] for node in observed]) if observed else np.zeros((n, 0), dtype=np.int64)
    if missing > 0:
        blank = rng.random(codes.shape) < missing
        codes = np.where(blank, [a.unobserved for a in alphabets], codes)
    return BatchEvidence(n_rows=codes.shape[0], nodes=tuple(observed), codes=codes, alphabets=tuple(alphabets))


def _file_names(spec: Spec) -> list[str]:
    """The prior files a spec was read from, by name, for the report's settings."""
    return [Path(f).name for f in spec.files] or ["(in memory)"]


def write_report(report: ValidationReport, directory: str | Path, *, figure=None) -> Path:
    """Write ``metrics.csv``, ``reliability.csv``, ``summary.md`` (and ``reliability.png``) into ``directory``.

    Each file is written atomically; the directory is created if its parent exists.

    Parameters
    ----------
    report : ValidationReport
    directory : str or Path
    figure : matplotlib Figure, optional
        E.g. ``plot_reliability(report.reliability, metrics=report.metrics)``; saved as
        ``reliability.png`` (this module does not import matplotlib itself).

    Returns
    -------
    Path
        The directory.

    Examples
    --------
    >>> import tempfile
    >>> out = write_report(validate(n=500, rng=2), Path(tempfile.mkdtemp()) / "report")
    >>> sorted(p.name for p in out.iterdir())
    ['metrics.csv', 'reliability.csv', 'summary.md']
    """
    directory = Path(directory)
    if not directory.parent.exists():
        raise InputError(f"{directory}: the parent folder {directory.parent} does not exist; expected an existing "
                         "folder to put the report in.")
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory}: is a file; expected a folder for the report.")
    directory.mkdir(exist_ok=True)
    with atomic_path(directory / "metrics.csv") as temporary:
        report.metrics.to_csv(temporary, index=False)
    with atomic_path(directory / "reliability.csv") as temporary:
        report.reliability.to_csv(temporary, index=False)
    summary = report.summary()
    if figure is not None:
        with atomic_path(directory / "reliability.png") as temporary:
            figure.savefig(temporary, format="png", dpi=110)
        summary += "\n![reliability curves](reliability.png)\n"
    with atomic_path(directory / "summary.md") as temporary:
        temporary.write_text(summary)
    return directory

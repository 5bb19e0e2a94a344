"""Scenarios: one cohort scored under several prior sets, and what changes.

``compare({"default": load_model(), "older adults": load_model("default", "older_adults")}, cohort)``
scores the cohort under each model (the first is the baseline) and reports, per target,
how far the posteriors move (mean and quantiles of the per-row shift) and which rows'
ranking of the deficiencies changes. A user-level function over :class:`~bayescramp.Model`
objects (or prior files, loaded with :func:`~bayescramp.load_model`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ._arguments import as_node_list, is_number, row_weights
from ._errors import InputError, one_of
from .scoring import default_targets

__all__ = ["Comparison", "compare"]


@dataclass
class Comparison:
    """The result of :func:`compare`.

    Attributes
    ----------
    baseline : str
        Name of the model the others are compared with.
    scores : dict
        Model name -> its scored table (``Model.score`` output, one row per input row, with
        the input's index).
    shifts : DataFrame
        One row per (scenario, target): ``scenario``, ``target`` (the ``p_`` column),
        ``baseline_mean``, ``scenario_mean``, ``mean_shift`` (scenario − baseline),
        ``mean_abs_shift``, ``max_abs_shift`` and ``shift_q<percent>`` per quantile asked
        for; over rows scored ``ok`` under both.
    ranking_summary : DataFrame
        One row per scenario: ``n_rows`` compared, ``n_top_changed`` / ``share_top_changed``
        (rows whose most probable deficiency differs), ``n_ranking_changed`` /
        ``share_ranking_changed`` (rows whose whole order of the targets differs).
    ranking_changes : DataFrame
        The rows whose ranking changes, indexed by their input index entry: ``scenario``,
        ``row`` (0-based position),
        ``baseline_top``, ``scenario_top``, ``top_changed``, ``baseline_ranking``,
        ``scenario_ranking`` (targets from most to least probable, ``" > "``-separated).
    """

    baseline: str
    scores: dict[str, pd.DataFrame]
    shifts: pd.DataFrame
    ranking_summary: pd.DataFrame
    ranking_changes: pd.DataFrame


def _as_models(models) -> dict[str, object]:
    from .model import Model, load_model

    if isinstance(models, Mapping):
        items = list(models.items())
    elif isinstance(models, Sequence) and not isinstance(models, str):
        items = []
        for model in models:
            if isinstance(model, Model):
                name = str(model.spec.meta.get("name", f"model {len(items)}"))
            else:
                name = Path(model[-1] if isinstance(model, (list, tuple)) else str(model)).stem
            taken = {n for n, _ in items}
            if name in taken:
                name = next(f"{name} ({k})" for k in range(2, len(items) + 2) if f"{name} ({k})" not in taken)
            items.append((name, model))
    else:
        raise InputError(f"compare: models got {type(models).__name__}; expected a mapping name -> Model (or prior "
                         "files), or a list of Models, the first being the baseline.")
    resolved = {}
    for name, model in items:
        if name in resolved:
            raise InputError(f"compare: two models are named {name!r}; expected distinct names (pass a mapping "
                             "name -> Model).")
        if isinstance(model, Model):
            resolved[name] = model
        elif isinstance(model, (str, Path)):
            # a lone overlay (older_adults, seed_claims) means "the default, overlaid"
            alone = str(model) == "default" or str(model).lower().endswith((".bif", ".bif.gz", ".xmlbif", ".xml"))
            resolved[name] = load_model(model) if alone else load_model("default", model)
        elif isinstance(model, (list, tuple)):
            resolved[name] = load_model(*model)
        else:
            raise InputError(f"compare: model {name!r} got {type(model).__name__}; expected a Model, a prior file or "
                             "bundled name (overlaid on the default), or a list of prior files.")
    if len(resolved) < 2:
        raise InputError(f"compare: got {len(resolved)} model(s); expected at least two (a baseline and a scenario).")
    return resolved


def compare(models, data: pd.DataFrame, *, targets: Sequence[str] | None = None,
            quantiles: Sequence[float] = (0.05, 0.5, 0.95), codebook=None,
            weights: str | Sequence[float] | None = None) -> Comparison:
    """Score one cohort under several prior sets and report per-target shifts and ranking changes.

    Parameters
    ----------
    models : mapping or sequence
        Name -> :class:`~bayescramp.Model`, or a list of Models (named by their ``meta.name``,
        ``"name (2)"`` for a repeat).
        A value may also be a bundled name or prior file (overlaid on the default, e.g.
        ``"older_adults"``) or a list of prior files. The first model is the baseline.
    data : DataFrame
        The cohort (columns named like nodes, blank = no finding).
    targets : sequence of str, optional
        Nodes to compare (default: the baseline's default targets, the deficiencies).
    quantiles : sequence of float
        Quantiles of the per-row shift to report.
    codebook : Codebook, optional
        Passed to ``Model.score``.
    weights : str or array-like, optional
        Survey weights (a column of ``data`` or one value per row): means become weighted means
        ``sum(w x) / sum(w)`` (population means), shares of rows become shares of the
        population, and quantiles are weighted (the smallest shift whose share of the weight at
        or below it reaches ``q``). ``n_rows`` stays the unweighted count.

    Returns
    -------
    Comparison

    Examples
    --------
    >>> from bayescramp import load_model
    >>> default = load_model()
    >>> cohort = default.simulate(200, rng=0)
    >>> result = compare({"default": default, "seed_claims": "seed_claims"}, cohort)
    >>> sorted(result.scores)
    ['default', 'seed_claims']
    >>> result.shifts.columns[:3].tolist()
    ['scenario', 'target', 'baseline_mean']
    >>> weighted = compare({"default": default, "seed_claims": "seed_claims"}, cohort, weights=np.arange(1.0, 201.0))
    >>> bool((weighted.shifts["mean_shift"] != result.shifts["mean_shift"]).any())
    True
    """
    resolved = _as_models(models)
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"compare: data got {type(data).__name__}; expected a pandas DataFrame (the cohort).")
    if not isinstance(quantiles, (list, tuple, np.ndarray)):
        raise InputError(f"compare: quantiles got {quantiles!r}; expected a list of numbers in [0, 1], e.g. "
                         "(0.05, 0.5, 0.95).")
    for q in quantiles:
        if not is_number(q) or not 0.0 <= float(q) <= 1.0:
            raise InputError(f"compare: quantile {q!r}; expected numbers in [0, 1].")
    weight = row_weights(data, weights, caller="compare")
    names = list(resolved)
    baseline = names[0]
    targets = _targets(resolved, data, targets)
    scores = {name: model.score(data, targets=targets, codebook=codebook) for name, model in resolved.items()}
    columns = _posterior_columns(scores, baseline, data)
    shift_rows, summary_rows, changes = [], [], []
    for name in names[1:]:
        ok = (scores[baseline]["status"] == "ok").to_numpy() & (scores[name]["status"] == "ok").to_numpy()
        before = scores[baseline].loc[ok, columns].to_numpy(dtype=float)
        after = scores[name].loc[ok, columns].to_numpy(dtype=float)
        shift_rows.extend(_shifts(name, columns, before, after, quantiles, weight[ok], weights is not None))
        summary, changed = _ranking_changes(name, columns, before, after, np.flatnonzero(ok), weight[ok], data.index)
        summary_rows.append(summary)
        changes.append(changed)
    ranking_changes = pd.concat(changes) if changes else pd.DataFrame()
    return Comparison(baseline=baseline, scores=scores, shifts=pd.DataFrame(shift_rows),
                      ranking_summary=pd.DataFrame(summary_rows), ranking_changes=ranking_changes)


def _targets(resolved: Mapping[str, object], data: pd.DataFrame, targets) -> list[str]:
    """The targets compared (default: the baseline's), checked against every model."""
    if targets is None:
        targets = default_targets(next(iter(resolved.values())).network, [str(c) for c in data.columns])
    targets = as_node_list(targets, argument="targets", caller="compare")
    for name, model in resolved.items():
        missing = [t for t in targets if t not in model.nodes]
        if missing:
            raise InputError(f"compare: model {name!r} has no node {missing[0]!r}; expected targets that every model "
                             f"has (some of {one_of(model.nodes)}).")
    return targets


def _posterior_columns(scores: Mapping[str, pd.DataFrame], baseline: str, data: pd.DataFrame) -> list[str]:
    """The baseline's posterior columns, which every other model must give too."""
    columns = [c for c in scores[baseline].columns if c.startswith("p_") and c not in data.columns and c != "p_"]
    for name, scored in scores.items():
        if [c for c in scored.columns if c in columns] != columns:
            raise InputError(f"compare: model {name!r} gives posterior columns other than the baseline's "
                             f"({one_of(columns)}); expected the same states for every target.")
    return columns


def _quantile(values: np.ndarray, q: float, weights: np.ndarray | None) -> float:
    """``np.quantile`` (linear) without weights; with weights the inverted weighted CDF."""
    if weights is None:
        return float(np.quantile(values, q))
    order = np.argsort(values, kind="stable")
    share = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][min(int(np.searchsorted(share, q, side="left")), len(values) - 1)])


def _shifts(name: str, columns: Sequence[str], before: np.ndarray, after: np.ndarray,
            quantiles: Sequence[float], weight: np.ndarray, weighted: bool) -> list[dict]:
    """One row per posterior column: (weighted) means, shifts and shift quantiles over the rows compared."""
    shift = after - before
    any_weight = len(before) > 0 and weight.sum() > 0
    rows = []
    for j, column in enumerate(columns):
        row = {"scenario": name, "target": column,
               "baseline_mean": np.average(before[:, j], weights=weight) if any_weight else np.nan,
               "scenario_mean": np.average(after[:, j], weights=weight) if any_weight else np.nan,
               "mean_shift": np.average(shift[:, j], weights=weight) if any_weight else np.nan,
               "mean_abs_shift": np.average(np.abs(shift[:, j]), weights=weight) if any_weight else np.nan,
               "max_abs_shift": np.abs(shift[:, j]).max() if len(before) else np.nan}
        for q in quantiles:
            row[f"shift_q{100 * q:g}"] = (_quantile(shift[:, j], q, weight if weighted else None)
                                          if any_weight else np.nan)
        rows.append(row)
    return rows


def _ranking_changes(name: str, columns: Sequence[str], before: np.ndarray, after: np.ndarray,
                     positions: np.ndarray, weight: np.ndarray, index: pd.Index) -> tuple[dict, pd.DataFrame]:
    """The scenario's ranking summary and the rows (at ``positions``) whose order of the targets changes."""
    labels = np.array([c.removeprefix("p_") for c in columns], dtype=object)
    order_before = np.argsort(-before, axis=1, kind="stable")
    order_after = np.argsort(-after, axis=1, kind="stable")
    top_changed = order_before[:, 0] != order_after[:, 0] if len(columns) else np.zeros(len(before), dtype=bool)
    ranking_changed = (order_before != order_after).any(axis=1)
    any_weight = len(before) > 0 and weight.sum() > 0
    summary = {"scenario": name, "n_rows": len(before), "n_top_changed": int(top_changed.sum()),
               "share_top_changed": np.average(top_changed, weights=weight) if any_weight else np.nan,
               "n_ranking_changed": int(ranking_changed.sum()),
               "share_ranking_changed": np.average(ranking_changed, weights=weight) if any_weight else np.nan}
    changed_positions = positions[ranking_changed]
    changed_before = order_before[ranking_changed]
    changed_after = order_after[ranking_changed]
    changes = pd.DataFrame({
        "scenario": name, "row": changed_positions,
        "baseline_top": labels[changed_before[:, 0]] if len(changed_positions) else [],
        "scenario_top": labels[changed_after[:, 0]] if len(changed_positions) else [],
        "top_changed": top_changed[ranking_changed],
        "baseline_ranking": [" > ".join(labels[r]) for r in changed_before],
        "scenario_ranking": [" > ".join(labels[r]) for r in changed_after]}, index=index[changed_positions])
    return summary, changes

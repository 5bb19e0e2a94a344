"""Pictures of results: the only module that imports matplotlib, and only inside functions.

Every function takes plain results (mappings, DataFrames, a compiled network) and returns the
``matplotlib.figure.Figure`` it drew on; save it with ``figure.savefig("file.png")``.

Every function takes ``ax=``, as ArviZ does: one matplotlib ``Axes`` for a one-panel plot, or
a sequence (or array) of Axes, one per panel, for a plot with a panel per target. Given
``ax=``, the function draws there, creates no figure and returns ``ax``'s figure (the figure's
title is set only when ``title=`` is given); without it, a new figure is built directly (no
pyplot, so no GUI backend is needed). ``import bayescramp`` never imports matplotlib.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ._arguments import renamed, row_weights
from ._errors import EvidenceError, InputError, one_of

__all__ = ["layered_layout", "plot_network", "plot_case", "plot_cohort", "plot_evidence_impact", "plot_reliability",
           "plot_tornado", "plot_prevalence", "plot_fit"]

_PRIOR_COLOUR = "#b8b8b8"
_POSTERIOR_COLOUR = "#c0392b"
_EVIDENCE_COLOUR = "#d6e6f5"


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _grid(n_panels: int, *, width: float = 4.0, height: float = 3.0, n_columns: int = 3):
    n_columns = max(1, min(n_columns, n_panels))
    n_rows = max(1, math.ceil(n_panels / n_columns))
    figure = _figure(width * n_columns, height * n_rows)
    axes = figure.subplots(n_rows, n_columns, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return figure, axes[:n_panels]


def _panels(ax, n_panels: int, *, caller: str, width: float = 4.0, height: float = 3.0, n_columns: int = 3):
    """The figure and the ``n_panels`` Axes to draw into: a new grid, or the Axes given as ``ax=``."""
    if ax is None:
        return _grid(n_panels, width=width, height=height, n_columns=n_columns)
    from matplotlib.axes import Axes

    axes = list(np.ravel(np.asarray(ax, dtype=object)))
    if not all(isinstance(a, Axes) for a in axes):
        bad = next(a for a in axes if not isinstance(a, Axes))
        raise InputError(f"{caller}: ax holds a {type(bad).__name__}; expected a matplotlib Axes or a sequence of "
                         "them (figure.subplots(...)).")
    if len(axes) != n_panels:
        raise InputError(f"{caller}: ax holds {len(axes)} Axes; expected {n_panels}, one per panel (or leave out "
                         "ax= for a new figure).")
    return axes[0].figure, axes


def _one_axes(ax, *, caller: str, width: float, height: float):
    """The figure and Axes of a one-panel plot: a new figure of this size, or the Axes given as ``ax=``."""
    if ax is None:
        figure = _figure(width, height)
        return figure, figure.add_subplot()
    figure, (axes,) = _panels(ax, 1, caller=caller)
    return figure, axes


def _title(figure, title: str | None, default: str, ax) -> None:
    """The figure's title: ``title``, else ``default`` on a figure of our own (never on the caller's)."""
    if title or ax is None:
        figure.suptitle(title or default)


def _pretty(node: str) -> str:
    return node.replace("_", " ")


def layered_layout(names: Sequence[str], parents: Mapping[str, Sequence[str]], *,
                   n_sweeps: int = 4) -> dict[str, tuple[int, float]]:
    """Layer and position of each node for drawing a DAG in columns (no graphviz needed).

    A node's layer is the length of the longest path from a root to it (roots are layer 0,
    every edge points to a later layer). Within a layer, nodes are ordered by the mean
    position of their neighbours in the previous (then the next) layer, sweeping forwards
    and backwards ``n_sweeps`` times to reduce edge crossings; positions are centred on 0.

    Parameters
    ----------
    names : sequence of str
        Nodes, parents before children.
    parents : mapping
        Node -> its parents.

    Returns
    -------
    dict
        Node -> ``(layer, position)``.

    Examples
    --------
    >>> layered_layout(["a", "b", "c"], {"a": (), "b": ("a",), "c": ("a", "b")})
    {'a': (0, 0.0), 'b': (1, 0.0), 'c': (2, 0.0)}
    """
    layer: dict[str, int] = {}
    for name in names:
        layer[name] = 1 + max((layer[p] for p in parents[name]), default=-1)
    children: dict[str, list[str]] = {name: [] for name in names}
    for name in names:
        for p in parents[name]:
            children[p].append(name)
    n_layers = 1 + max(layer.values(), default=-1)
    columns = [[n for n in names if layer[n] == k] for k in range(n_layers)]
    rank = {n: float(i) for column in columns for i, n in enumerate(column)}

    def reorder(column: list[str], neighbours: Mapping[str, Sequence[str]]) -> list[str]:
        def key(n: str) -> tuple[float, float]:
            linked = [rank[m] for m in neighbours[n]]
            return (float(np.mean(linked)) if linked else rank[n], rank[n])

        ordered = sorted(column, key=key)
        for i, n in enumerate(ordered):
            rank[n] = float(i)
        return ordered

    for _ in range(n_sweeps):
        columns = [columns[0]] + [reorder(c, parents) for c in columns[1:]]
        columns = [reorder(c, children) for c in columns[:-1]] + [columns[-1]] if columns else columns
    return {n: (k, i - (len(column) - 1) / 2) for k, column in enumerate(columns) for i, n in enumerate(column)}


def _positive_probability(node: str, positive: str | None, probabilities: Mapping) -> float | None:
    value = probabilities.get(node)
    if value is None:
        return None
    if isinstance(value, Mapping) or isinstance(value, pd.Series):
        return float(value[positive]) if positive is not None else None
    return float(value)


def plot_network(network, *, probabilities: Mapping | None = None, evidence: Mapping[str, str] | None = None,
                 title: str | None = None, ax=None):
    """The network drawn in layers, nodes coloured by the probability of their positive state.

    The positive state of a two-state node is the model's (``meta.positive_states``, see
    :class:`bayescramp.spec.ModelInfo`); nodes without one are drawn white unless given as a float.

    Parameters
    ----------
    network : CompiledNetwork
        ``model.network`` (needs ``names``, ``parents`` and ``states``).
    probabilities : mapping, optional
        Node -> P(positive state) as a float, or node -> Series over its states (a
        :class:`~bayescramp.Posterior` works). Nodes left out are drawn white.
    evidence : mapping, optional
        Observed node -> what was observed (drawn as a blue box with the value).
    title : str, optional
    ax : matplotlib Axes, optional
        Draw into this Axes (the colour bar takes room beside it); default a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from bayescramp import load_model
    >>> model = load_model()
    >>> figure = plot_network(model.network, probabilities=model.posterior({"fatigue": "yes"}),
    ...                       evidence={"fatigue": "yes"})
    >>> figure.axes[0].get_title()
    'nodes coloured by P(present / yes); blue boxes are findings'
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    probabilities = dict(probabilities or {})
    evidence = dict(evidence or {})
    layout = layered_layout(network.names, network.parents)
    n_layers = 1 + max(layer for layer, _ in layout.values())
    tallest = max(sum(1 for layer, _ in layout.values() if layer == k) for k in range(n_layers))
    figure, ax = _one_axes(ax, caller="plot_network", width=2.3 * n_layers + 1.2,
                           height=max(3.0, 0.62 * tallest + 1.0))
    colours = colormaps["YlOrRd"]
    norm = Normalize(0.0, 1.0)
    boxes = {}
    for node, (layer, position) in layout.items():
        if node in evidence:
            label, face, weight = f"{_pretty(node)}\n= {evidence[node]}", _EVIDENCE_COLOUR, "bold"
        else:
            p = _positive_probability(node, network.info.positive_state(node), probabilities)
            if p is None and node in probabilities:
                series = pd.Series(probabilities[node])
                label = f"{_pretty(node)}\n{series.idxmax()} {series.max():.2f}"
                face = "white"
            elif p is None:
                label, face = _pretty(node), "white"
            else:
                label, face = f"{_pretty(node)}\n{p:.2f}", colours(norm(p))
            weight = "normal"
        luminance = np.dot(np.asarray(face if isinstance(face, tuple) else (1, 1, 1, 1))[:3], [0.299, 0.587, 0.114])
        boxes[node] = ax.text(layer, -position, label, ha="center", va="center", fontsize=8, fontweight=weight,
                              color="white" if luminance < 0.5 else "black", zorder=3,
                              bbox={"boxstyle": "round,pad=0.35", "facecolor": face, "edgecolor": "#444444",
                                    "linewidth": 1.6 if node in evidence else 0.8})
    for node in network.names:
        for parent in network.parents[node]:
            ax.annotate("", xy=(layout[node][0], -layout[node][1]), xytext=(layout[parent][0], -layout[parent][1]),
                        arrowprops={"arrowstyle": "-|>", "color": "#777777", "linewidth": 0.7, "shrinkA": 2,
                                    "shrinkB": 2, "patchA": boxes[parent].get_bbox_patch(),
                                    "patchB": boxes[node].get_bbox_patch(), "connectionstyle": "arc3,rad=0.05"},
                        zorder=1)
    half = (tallest - 1) / 2
    ax.set_xlim(-0.6, n_layers - 0.4)
    ax.set_ylim(-half - 0.7, half + 0.7)
    ax.axis("off")
    ax.set_title("nodes coloured by P(present / yes); blue boxes are findings", fontsize=10)
    figure.colorbar(ScalarMappable(norm=norm, cmap=colours), ax=ax, shrink=0.5, pad=0.0, label="P(present / yes)")
    if title:
        figure.suptitle(title)
    return figure


def plot_case(posterior: Mapping[str, float], prior: Mapping[str, float], *, lower: Mapping[str, float] | None = None,
              upper: Mapping[str, float] | None = None, title: str | None = None, ax=None):
    """One case's posteriors beside their priors, largest posterior on top, with intervals when given.

    Parameters
    ----------
    posterior, prior : mapping
        Node -> P(positive state) given the evidence, and before it.
    lower, upper : mapping, optional
        Node -> bounds of a credible interval of the posterior (e.g. over parameter
        uncertainty), drawn as error bars.
    title : str, optional
    ax : matplotlib Axes, optional
        Draw into this Axes; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> figure = plot_case({"a_deficiency": 0.3, "b_deficiency": 0.1}, {"a_deficiency": 0.1, "b_deficiency": 0.1},
    ...                    lower={"a_deficiency": 0.2}, upper={"a_deficiency": 0.4})
    >>> figure.axes[0].get_xlabel()
    'P(present)'
    """
    nodes = sorted(posterior, key=lambda n: posterior[n])
    missing = [n for n in nodes if n not in prior]
    if missing:
        raise InputError(f"plot_case: node {missing[0]!r} has a posterior but no prior; expected priors for "
                         f"{one_of(nodes)}.")
    figure, ax = _one_axes(ax, caller="plot_case", width=7.5, height=0.55 * len(nodes) + 1.4)
    y = np.arange(len(nodes))
    height = 0.38
    post = np.array([posterior[n] for n in nodes], dtype=float)
    ax.barh(y - height / 2, [prior[n] for n in nodes], height, color=_PRIOR_COLOUR, label="prior")
    ax.barh(y + height / 2, post, height, color=_POSTERIOR_COLOUR, label="posterior")
    if lower is not None or upper is not None:
        low = np.array([(lower or {}).get(n, posterior[n]) for n in nodes], dtype=float)
        high = np.array([(upper or {}).get(n, posterior[n]) for n in nodes], dtype=float)
        ax.errorbar(post, y + height / 2, xerr=[post - low, high - post], fmt="none", ecolor="black", capsize=3,
                    linewidth=1, label="credible interval")
    top = max(max(post.max(initial=0), max(prior[n] for n in nodes)),
              max((upper or {}).values(), default=0.0))
    for yi, node, value in zip(y, nodes, post):
        right = max(value, (upper or {}).get(node, value))
        ax.text(right + 0.012 * max(top, 0.05), yi + height / 2, f"{value:.3f}", va="center", fontsize=8)
    ax.set_yticks(y, [_pretty(n) for n in nodes])
    ax.set_xlim(0, min(1.12, top * 1.18 + 0.02))
    ax.set_xlabel("P(present)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or "posterior beside prior", fontsize=10, wrap=True)
    return figure


def plot_cohort(scored: pd.DataFrame, *, columns: Sequence[str] | None = None, n_bins: int = 20,
                title: str | None = None, weights: str | Sequence[float] | None = None, ax=None):
    """Histogram of each target's posterior across a scored cohort (one panel per ``p_`` column).

    Parameters
    ----------
    scored : DataFrame
        Output of ``Model.score`` / ``bayescramp score``; rows whose ``status`` is not ``ok``
        are left out.
    columns : sequence of str, optional
        Default every ``p_*`` column.
    n_bins : int
        Equal-width bins from 0 to just above the column's largest value (the dashed line
        is the mean).
    title : str, optional
    weights : str or array-like, optional
        Survey weights (a column of ``scored`` or one value per row): bars count the population
        each row stands for and the dashed line is the weighted mean, the population prevalence
        (:func:`bayescramp.prevalence` gives its standard error).
    ax : matplotlib Axes or sequence of Axes, optional
        One Axes per column drawn; default a new figure with a grid of panels.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> frame = pd.DataFrame({"p_a_deficiency": [0.1, 0.2, 0.25], "p_b_deficiency": [0.5, 0.6, 0.9]})
    >>> len(plot_cohort(frame).axes)
    2
    >>> plot_cohort(frame.assign(w=[1.0, 5.0, 2.0]), weights="w").axes[0].get_ylabel()
    'people (sum of weights)'
    """
    if columns is None:
        columns = [c for c in scored.columns if str(c).startswith("p_")]
    if not columns:
        raise InputError(f"plot_cohort: got columns {one_of(scored.columns)}; expected p_<node> columns from a "
                         "scored table (bayescramp score).")
    unknown = [c for c in columns if c not in scored.columns]
    if unknown:
        raise InputError(f"plot_cohort: column {unknown[0]!r} is not in the table; expected some of "
                         f"{one_of(scored.columns)}.")
    weight = row_weights(scored, weights, caller="plot_cohort")
    keep = (scored["status"] == "ok").to_numpy() if "status" in scored.columns else np.ones(len(scored), dtype=bool)
    rows = scored[keep]
    weight = weight[keep]
    figure, axes = _panels(ax, len(columns), caller="plot_cohort", width=3.8, height=2.8)
    for ax_, column in zip(axes, columns):
        values = pd.to_numeric(rows[column], errors="coerce").to_numpy()
        present = ~np.isnan(values)
        values, row_weight = values[present], weight[present]
        # each panel spans its own range: rare deficiencies would otherwise sit in one bar at 0
        right = min(1.0, max(float(values.max(initial=0.0)) * 1.05, 0.01))
        ax_.hist(values, bins=np.linspace(0.0, right, n_bins + 1), weights=row_weight, color=_POSTERIOR_COLOUR,
                 alpha=0.85)
        mean = float(np.average(values, weights=row_weight)) if row_weight.sum() > 0 else math.nan
        label = f" ({'weighted ' if weights is not None else ''}mean {mean:.3f})" if len(values) else " (no rows)"
        if len(values):
            ax_.axvline(mean, color="black", linestyle="--", linewidth=1)
        ax_.set_title(_pretty(str(column).removeprefix("p_")) + label, fontsize=10)
        ax_.set_xlim(0, right)
        ax_.set_xlabel("posterior P(present)")
        ax_.set_ylabel("people" if weights is None else "people (sum of weights)")
    weighted = ", weighted" if weights is not None else ""
    _title(figure, title, f"posterior across the cohort ({len(rows)} rows{weighted})", ax)
    return figure


def plot_prevalence(table: pd.DataFrame, *, targets: str | Sequence[str] | None = None, ax=None,
                    title: str | None = None):
    """Forest plot of population prevalences with their confidence intervals, one panel per target.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`bayescramp.prevalence` (or ``bayescramp prevalence -o``).
    targets : str or sequence of str, optional
        Targets to draw (default: all in the table).
    ax : matplotlib Axes or sequence of Axes, optional
        One Axes per target drawn; default a new figure with a panel per target.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Each subgroup is a point at its estimate with a bar over its confidence interval (``lower``
        to ``upper``); with ``interval=`` columns, a thin grey bar spans the interval that also
        counts parameter uncertainty. The dashed line is the overall prevalence.

    Examples
    --------
    >>> table = pd.DataFrame({"target": ["a", "a", "a"], "group": ["all", "sex", "sex"], "sex": [None, "f", "m"],
    ...                       "estimate": [0.2, 0.15, 0.25], "lower": [0.18, 0.12, 0.21], "upper": [0.22, 0.18, 0.29]})
    >>> [label.get_text() for label in plot_prevalence(table).axes[0].get_yticklabels()]
    ['all', 'sex=f', 'sex=m']
    """
    needed = {"target", "group", "estimate", "lower", "upper"}
    if not needed <= set(table.columns):
        raise InputError(f"plot_prevalence: got columns {one_of(table.columns)}; expected the columns of "
                         f"bayescramp.prevalence ({one_of(sorted(needed))}).")
    chosen = _chosen_targets(targets, list(dict.fromkeys(table["target"])), caller="plot_prevalence",
                             holder="table")
    # the subgroup columns sit between "group" and "estimate" in bayescramp.prevalence's layout
    by_columns = list(table.columns[table.columns.get_loc("group") + 1:table.columns.get_loc("estimate")])
    figure, axes = _prevalence_panels(table, chosen, ax)
    for ax_, target in zip(axes, chosen):
        _draw_prevalence_panel(ax_, table[table["target"] == target].reset_index(drop=True), by_columns)
        ax_.set_title(_pretty(str(target)), fontsize=10)
    axes[0].legend(loc="best", fontsize=7)
    if title:
        figure.suptitle(title)
    return figure


def _chosen_targets(targets: str | Sequence[str] | None, available: list, *, caller: str, holder: str) -> list:
    """The targets to draw: ``targets`` (one or many) checked against ``available``, else all of them."""
    chosen = available if targets is None else [targets] if isinstance(targets, str) else list(targets)
    unknown = [t for t in chosen if t not in available]
    if unknown:
        raise InputError(f"{caller}: target {unknown[0]!r} is not in the {holder}; expected some of "
                         f"{one_of(available)}.")
    return chosen


def _prevalence_panels(table: pd.DataFrame, chosen: list, ax):
    """The figure and one Axes per chosen target: the caller's ``ax=``, else panels sized to their rows."""
    if ax is not None:
        return _panels(ax, len(chosen), caller="plot_prevalence")
    # each panel is as tall as its subgroup rows, so a target with many subgroups stays readable
    sizes = [int((table["target"] == t).sum()) for t in chosen]
    figure = _figure(7.5, 0.28 * sum(sizes) + 1.1 * len(chosen) + 0.6)
    return figure, figure.subplots(len(chosen), 1, squeeze=False, height_ratios=[s + 2 for s in sizes]).ravel()


def _subgroup_labels(rows: pd.DataFrame, by_columns: list) -> list[str]:
    """One label a row: ``column=value`` for each column of its group (``all`` for the whole population)."""
    labels = []
    for _, row in rows.iterrows():
        # a group such as "sex*age_group" crosses columns; only those columns describe the row
        parts = [c for c in by_columns if c in str(row["group"]).split("*")]
        labels.append(", ".join(f"{c}={'(missing)' if pd.isna(row[c]) else row[c]}" for c in parts) or "all")
    return labels


def _draw_prevalence_panel(ax, rows: pd.DataFrame, by_columns: list) -> None:
    """Draw one target's subgroups top-down: estimates, intervals, the overall line and group separators."""
    from matplotlib.ticker import PercentFormatter

    y = np.arange(len(rows))[::-1]
    labels = _subgroup_labels(rows, by_columns)
    if {"lower_total", "upper_total"} <= set(rows.columns):
        ax.hlines(y, rows["lower_total"], rows["upper_total"], color=_PRIOR_COLOUR, linewidth=5,
                  label="with parameter uncertainty")
    ax.hlines(y, rows["lower"], rows["upper"], color=_POSTERIOR_COLOUR, linewidth=2, label="confidence interval")
    ax.plot(rows["estimate"], y, "o", color="black", markersize=4, label="estimate")
    overall = rows.loc[rows["group"] == "all", "estimate"]
    if len(overall):
        ax.axvline(float(overall.iloc[0]), color="black", linestyle="--", linewidth=0.8)
    changes = np.flatnonzero(rows["group"].to_numpy()[1:] != rows["group"].to_numpy()[:-1])
    for k in changes:
        ax.axhline(y[k] - 0.5, color="#dddddd", linewidth=0.8)
    ax.set_yticks(y, labels)
    for tick, label in zip(ax.get_yticklabels(), labels):
        if label == "all":
            tick.set_fontweight("bold")
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set_xlabel("population prevalence")


@renamed(target="targets")
def plot_evidence_impact(explanation: pd.DataFrame, *, targets: str | Sequence[str] | None = None,
                         title: str | None = None, ax=None):
    """Each finding's weight of evidence toward each target, for one case (from ``Model.explain``).

    Bars run right (toward the hypothesis) or left (away from it) in natural-log units; the
    prior log-odds plus the bars give the posterior log-odds (findings in entry order, top down).

    Parameters
    ----------
    explanation : DataFrame
        ``Model.explain(case)`` (one case; for a table, select one ``row`` first).
    targets : str or sequence of str, optional
        Targets to draw (default: every target in the table). ``target=`` is its deprecated spelling.
    title : str, optional
    ax : matplotlib Axes or sequence of Axes, optional
        One Axes per target drawn; default a new figure with a panel per target.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from bayescramp import load_model
    >>> table = load_model().explain({"diuretic": "thiazide", "cramp_timing": "night"},
    ...                               targets=["potassium_deficiency", "magnesium_deficiency"])
    >>> len(plot_evidence_impact(table).axes)
    2
    """
    if "row" in explanation.columns and explanation["row"].nunique() > 1:
        raise InputError(f"plot_evidence_impact: the table holds {explanation['row'].nunique()} rows; expected one "
                         "case (select one: table[table['row'] == label]).")
    if explanation.empty:
        raise InputError("plot_evidence_impact: the explanation is empty; expected at least one finding.")
    if "status" in explanation.columns and (explanation["status"] != "ok").any():
        raise EvidenceError(f"plot_evidence_impact: the case's status is {explanation['status'].iloc[0]!r} (its "
                            "evidence has probability zero under the model, so there is no posterior to draw); "
                            "expected a case whose findings the model allows together.")
    targets = _chosen_targets(targets, list(dict.fromkeys(explanation["target"])), caller="plot_evidence_impact",
                              holder="explanation")
    n_findings = explanation.groupby(["target", "state"]).size().max()
    figure, axes = _panels(ax, len(targets), caller="plot_evidence_impact", width=5.4,
                           height=0.42 * n_findings + 1.5, n_columns=2)
    for ax_, name in zip(axes, targets):
        group = explanation[explanation["target"] == name].sort_values("order")
        state = group["state"].iloc[0]
        group = group[group["state"] == state]
        weights = group["weight"].to_numpy(dtype=float)
        y = np.arange(len(group))[::-1]
        ax_.barh(y, weights, color=np.where(weights >= 0, _POSTERIOR_COLOUR, "#2e86c1"))
        ax_.axvline(0, color="black", linewidth=0.8)
        ax_.set_yticks(y, [f"{f}={v}" for f, v in zip(group["finding"], group["value"])], fontsize=8)
        reach = max(float(np.nanmax(np.abs(weights), initial=0.0)), 0.1) * 1.35
        ax_.set_xlim(-reach, reach)
        for yi, w in zip(y, weights):
            ax_.text(w + (0.02 if w >= 0 else -0.02) * reach, yi, f"{w:+.2f}" if abs(w) >= 0.005 else "0",
                     va="center", ha="left" if w >= 0 else "right", fontsize=7)
        prior, posterior = group["prior"].iloc[0], group["posterior"].iloc[0]
        hypothesis = f"{_pretty(name)} = {state}"
        ax_.set_title(f"{hypothesis}: {prior:.3f} \u2192 {posterior:.3f}", fontsize=10)
        ax_.set_xlabel("weight of evidence (log-odds)")
    _title(figure, title, "evidence impact (findings enter top to bottom)", ax)
    return figure


def plot_reliability(reliability: pd.DataFrame, *, metrics: pd.DataFrame | None = None, title: str | None = None,
                     ax=None):
    """Reliability (calibration) curves: observed rate against mean predicted probability, per target.

    Parameters
    ----------
    reliability : DataFrame
        ``ValidationReport.reliability``: ``target``, ``mean_predicted``, ``observed_rate``,
        ``lower``, ``upper`` (95% interval of the observed rate), ``n``.
    metrics : DataFrame, optional
        ``ValidationReport.metrics``; AUROC, calibration slope and ECE are printed per panel.
    title : str, optional
    ax : matplotlib Axes or sequence of Axes, optional
        One Axes per target; default a new figure with a panel per target.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> table = pd.DataFrame({"target": ["a", "a"], "mean_predicted": [0.1, 0.5], "observed_rate": [0.12, 0.45],
    ...                       "lower": [0.08, 0.4], "upper": [0.16, 0.5], "n": [100, 100]})
    >>> plot_reliability(table).axes[0].get_xlabel()
    'mean predicted probability'
    """
    targets = list(dict.fromkeys(reliability["target"]))
    figure, axes = _panels(ax, len(targets), caller="plot_reliability", width=3.6, height=3.4)
    by_target = metrics.set_index("target") if metrics is not None else None
    for ax_, name in zip(axes, targets):
        part = reliability[(reliability["target"] == name) & (reliability["n"] > 0)]
        top = float(np.nanmax(np.r_[part["upper"], part["mean_predicted"], 0.02])) * 1.08
        top = min(1.0, top)
        ax_.plot([0, top], [0, top], color="#888888", linestyle="--", linewidth=1, label="perfect")
        ax_.errorbar(part["mean_predicted"], part["observed_rate"],
                     yerr=[part["observed_rate"] - part["lower"], part["upper"] - part["observed_rate"]],
                     fmt="o-", color=_POSTERIOR_COLOUR, markersize=3.5, linewidth=1, capsize=2, label="observed")
        ax_.set_xlim(0, top)
        ax_.set_ylim(0, top)
        ax_.set_aspect("equal")
        ax_.set_title(_pretty(str(name)), fontsize=10)
        ax_.set_xlabel("mean predicted probability")
        ax_.set_ylabel("observed rate")
        if by_target is not None and name in by_target.index:
            row = by_target.loc[name]
            text = "\n".join(f"{label} {value:{spec}}" if np.isfinite(value) else f"{label} n/a" for label, value, spec
                             in [("AUROC", row["auroc"], ".3f"), ("slope", row["calibration_slope"], ".2f"),
                                 ("intercept", row["calibration_intercept"], "+.2f"), ("ECE", row["ece"], ".4f")])
            ax_.text(0.04, 0.96, text, transform=ax_.transAxes, va="top", fontsize=8,
                     bbox={"facecolor": "white", "edgecolor": "#cccccc", "alpha": 0.9})
        ax_.legend(loc="lower right", fontsize=7)
    _title(figure, title, "calibration: observed rate against predicted probability", ax)
    return figure


def plot_tornado(sensitivity: pd.DataFrame, *, top: int = 10, title: str | None = None, ax=None):
    """Tornado diagram: the ``top`` parameters by swing, each bar spanning the posterior over the parameter's range.

    Parameters
    ----------
    sensitivity : DataFrame
        ``Model.sensitivity(...)`` for one case, or its cohort mean (``summary="mean"``):
        needs ``id``, ``low``, ``high``, ``posterior``, ``posterior_at_low``,
        ``posterior_at_high`` and ``swing``.
    top : int
        How many parameters to draw, largest swing on top.
    title : str, optional
    ax : matplotlib Axes, optional
        Draw into this Axes; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        Each bar runs from the posterior with the parameter at ``low`` (blue end) to the
        posterior at ``high`` (red end); the dashed line is the current posterior. Labels
        give the parameter and its range.

    Examples
    --------
    >>> from bayescramp import load_model
    >>> table = load_model().sensitivity({"leg_cramps": "yes", "diuretic": "thiazide"})
    >>> len(plot_tornado(table, top=5).axes[0].patches)
    10
    """
    import textwrap

    needed = ["id", "low", "high", "posterior", "posterior_at_low", "posterior_at_high", "swing"]
    missing = [c for c in needed if c not in sensitivity.columns]
    if missing:
        raise InputError(f"plot_tornado: column {missing[0]!r} is missing; expected a table from Model.sensitivity "
                         f"with columns {one_of(needed)}.")
    if "row" in sensitivity.columns and sensitivity["row"].nunique() > 1:
        raise InputError(f"plot_tornado: the table holds {sensitivity['row'].nunique()} cohort rows; expected one case "
                         "or the cohort mean (Model.sensitivity(data, summary=\"mean\")).")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise InputError(f"plot_tornado: top got {top!r}; expected a positive whole number.")
    rows = sensitivity.sort_values("swing", ascending=False, kind="stable", na_position="last").head(int(top))
    rows = rows.iloc[::-1]
    # break long ids after "|" and "," so a parent configuration reads one clause per line
    labels = ["\n".join(textwrap.wrap(_pretty(str(r.id)).replace("|", " | ").replace(",", ", "), 50,
                                       break_on_hyphens=False) + [f"range [{r.low:g}, {r.high:g}]"])
              for r in rows.itertuples()]
    n_lines = sum(label.count("\n") + 1 for label in labels)
    figure, ax = _one_axes(ax, caller="plot_tornado", width=10.0, height=0.17 * n_lines + 0.2 * len(rows) + 1.4)
    y = np.arange(len(rows))
    baseline = float(rows["posterior"].iloc[0]) if len(rows) else 0.0
    at_low = rows["posterior_at_low"].to_numpy(dtype=float)
    at_high = rows["posterior_at_high"].to_numpy(dtype=float)
    ax.barh(y, at_low - baseline, left=baseline, color="#2e86c1", height=0.6, label="parameter at low end")
    ax.barh(y, at_high - baseline, left=baseline, color=_POSTERIOR_COLOUR, height=0.6, label="parameter at high end")
    ax.axvline(baseline, color="black", linestyle="--", linewidth=1, label=f"current posterior {baseline:.3f}")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("posterior probability")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or f"tornado: the {len(rows)} parameters moving the posterior most over their ranges")
    return figure


def plot_fit(report: pd.DataFrame, *, truth: Mapping[str, float] | pd.Series | None = None,
             parameters: Sequence[str] | None = None, top: int | None = 20, title: str | None = None, ax=None):
    """Prior against fitted (and true) values of a model's parameters: one line per parameter.

    Parameters
    ----------
    report : DataFrame
        ``Model.fit(...).report`` (needs ``id``, ``prior``, ``prior_low``, ``prior_high``, ``fitted``,
        ``lower``, ``upper`` and ``status``).
    truth : mapping or Series, optional
        Parameter id -> the value it was simulated with, drawn as a black cross.
    parameters : sequence of str, optional
        The parameter ids to draw (default: the ``top`` that moved most in units of their prior's width).
    top : int or None
        How many parameters to draw when ``parameters`` is not given (None: all fitted ones).
    title : str, optional
    ax : matplotlib Axes, optional
        Draw into this Axes (its figure is returned); default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        Grey: the prior value and its range; red: the fitted value and its interval; black cross:
        the truth. Labels end with ``(not identifiable)`` or ``(uninformed)`` where the fit says so.

    Examples
    --------
    >>> import pandas as pd
    >>> report = pd.DataFrame({"id": ["P(a=yes)"], "prior": [0.2], "prior_low": [0.1], "prior_high": [0.3],
    ...                        "fitted": [0.25], "lower": [0.22], "upper": [0.28], "status": ["fitted"],
    ...                        "change_in_widths": [0.25]})
    >>> len(plot_fit(report, truth={"P(a=yes)": 0.26}).axes)
    1
    """
    import textwrap

    needed = ["id", "prior", "prior_low", "prior_high", "fitted", "lower", "upper", "status"]
    missing = [c for c in needed if c not in report.columns]
    if missing:
        raise InputError(f"plot_fit: column {missing[0]!r} is missing; expected the report of Model.fit with columns "
                         f"{one_of(needed)}.")
    if parameters is not None:
        unknown = [p for p in parameters if p not in set(report["id"])]
        if unknown:
            raise InputError(f"plot_fit: parameters names {unknown[0]!r}, which the report does not hold; expected "
                             "ids from its id column.")
        rows = report.set_index("id").loc[list(parameters)].reset_index()
    else:
        rows = report[report["status"] != "fixed"].copy()
        moved = (rows["fitted"] - rows["prior"]).abs()
        change = rows["change_in_widths"].abs() if "change_in_widths" in rows else moved
        rows = rows.assign(_order=change.fillna(moved))
        rows = rows.sort_values("_order", ascending=False, kind="stable")
        if top is not None:
            if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
                raise InputError(f"plot_fit: top got {top!r}; expected a positive whole number or None.")
            rows = rows.head(int(top))
    rows = rows.iloc[::-1]
    flags = {"not_identifiable": " (not identifiable)", "uninformed": " (uninformed)"}
    labels = ["\n".join(textwrap.wrap(_pretty(str(r.id)).replace("|", " | ").replace(",", ", "), 55,
                                       break_on_hyphens=False)) + flags.get(r.status, "") for r in rows.itertuples()]
    n_lines = sum(label.count("\n") + 1 for label in labels)
    figure, ax = _one_axes(ax, caller="plot_fit", width=10.0, height=0.17 * n_lines + 0.15 * len(rows) + 1.4)
    y = np.arange(len(rows), dtype=float)
    ax.hlines(y + 0.15, rows["prior_low"], rows["prior_high"], color=_PRIOR_COLOUR, linewidth=4, label="prior range")
    ax.plot(rows["prior"], y + 0.15, "o", color="#7f7f7f", markersize=5, label="prior value")
    ax.hlines(y - 0.15, rows["lower"], rows["upper"], color=_POSTERIOR_COLOUR, linewidth=2, label="fitted interval")
    ax.plot(rows["fitted"], y - 0.15, "o", color=_POSTERIOR_COLOUR, markersize=5, label="fitted value")
    if truth is not None:
        truth = pd.Series(truth, dtype=float)
        known = rows["id"].isin(truth.index).to_numpy()
        ax.plot(truth.reindex(rows["id"]).to_numpy()[known], y[known], "x", color="black", markersize=7,
                label="truth")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("probability")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or f"prior and fitted values of {len(rows)} parameters")
    return figure

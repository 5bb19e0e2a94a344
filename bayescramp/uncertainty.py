"""Prior uncertainty to credible intervals: draw every parameter jointly, score every draw.

Each parameter's ``value`` and ``range = [low, high]`` define a distribution:

- ``low == high`` (e.g. a structural zero): the value is fixed.
- ``0 < value < 1``: a Beta with **mean = value** whose central ``range_coverage``
  (default 95%) interval is as wide as the range: ``Beta(κ·value, κ·(1 − value))`` with the
  concentration ``κ`` solved numerically (scipy) so that ``q(0.975) − q(0.025) = high − low``.
  A range asymmetric about the value is matched in width only (the Beta's own skew decides
  where the interval sits).
- ``value == 0`` (or 1) with a non-empty range: ``Beta(1, b)`` (or ``Beta(b, 1)``), mode at the
  value, with ``high`` (or ``low``) at the ``(1 + range_coverage) / 2`` quantile.
- An explicit ``distribution = { kind = "beta", alpha = A, beta = B }`` on the parameter in a
  prior file overrides the mapping (``{ kind = "fixed" }`` pins the value).

Parameters are drawn independently; the tables are then built by the one table builder,
:func:`bayescramp.spec.probability_table`, over the arrays of drawn values: the remainder
state takes ``1 − Σ`` of the drawn entries, and if the drawn entries of a row sum above 1 (or
a row has no remainder state) the row's drawn entries are rescaled so it sums to exactly 1.
Noisy-OR leaks and links are drawn on their own (each column is normalised by construction).

Intervals are Monte Carlo quantiles of the posterior over ``n_draws`` joint draws: every
distinct evidence pattern is propagated once per draw, as one batch of patterns x draws in
which each drawn CPD is shared by every pattern (:func:`bayescramp.engine.propagate_draws`;
chunked to bound memory). Reproducible with a seed.
"""

from __future__ import annotations

import math
from typing import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from ._arguments import as_generator, is_number
from ._errors import InputError, SpecError
from .engine import CompiledNetwork, propagate_draws
from .evidence import BatchEvidence, TableEncoder
from .scoring import check_targets, encode_frame, target_columns
from .spec import Parameter, Spec, parameters_by_id, probability_table

__all__ = [
    "DEFAULT_RANGE_COVERAGE",
    "beta_parameters",
    "parameter_distributions",
    "parameter_table",
    "draw_parameters",
    "draw_tables",
    "draw_marginals",
    "posterior_intervals",
    "score_intervals",
    "evidence_intervals",
    "add_interval_columns",
    "case_intervals",
]

#: The share of a parameter's distribution its configured range is taken to hold.
DEFAULT_RANGE_COVERAGE = 0.95
#: Rows (patterns × draws) propagated at a time.
DEFAULT_CHUNK_ROWS = 1 << 18
_KAPPA_BOUNDS = (1e-3, 1e9)


def beta_parameters(parameter: Parameter, *, range_coverage: float = DEFAULT_RANGE_COVERAGE
                    ) -> tuple[float, float] | None:
    """The ``(alpha, beta)`` of a parameter's Beta distribution, or ``None`` when it is fixed.

    Parameters
    ----------
    parameter : Parameter
    range_coverage : float
        Share of the distribution the range ``[low, high]`` is taken to hold (central interval).

    Returns
    -------
    tuple of float or None

    Raises
    ------
    SpecError
        If the parameter's ``distribution`` override is malformed.

    Examples
    --------
    >>> from bayescramp.spec import Parameter
    >>> a, b = beta_parameters(Parameter("p", 0.2, 0.1, 0.3))
    >>> round(a / (a + b), 12)
    0.2
    """
    if not 0.0 < range_coverage < 1.0:
        raise InputError(f"range_coverage: got {range_coverage!r}; expected a fraction strictly between 0 and 1.")
    if parameter.distribution is not None:
        return _override(parameter)
    value, low, high = parameter.value, parameter.low, parameter.high
    if high <= low:
        return None
    tail = (1.0 - range_coverage) / 2.0
    if value <= 0.0:
        return 1.0, _one_sided_shape(high, tail)
    if value >= 1.0:
        return _one_sided_shape(1.0 - low, tail), 1.0
    from scipy import optimize, stats

    width = high - low

    def excess(log_kappa):
        kappa = np.exp(log_kappa)
        lower = stats.beta.ppf(tail, kappa * value, kappa * (1.0 - value))
        upper = stats.beta.ppf(1.0 - tail, kappa * value, kappa * (1.0 - value))
        return (upper - lower) - width

    # the interval widens as κ falls from ∞, but for small κ the Beta splits its mass onto 0 and 1
    # and (for a value near an edge) the central interval shrinks again: take the largest κ that
    # matches, found by a scan from large κ down and then brentq
    grid = np.linspace(math.log(_KAPPA_BOUNDS[1]), math.log(_KAPPA_BOUNDS[0]), 241)
    excesses = excess(grid)
    wide_enough = np.flatnonzero(excesses >= 0)
    if wide_enough.size == 0:
        kappa = math.exp(grid[int(np.argmax(excesses))])
    elif wide_enough[0] == 0:
        kappa = _KAPPA_BOUNDS[1]
    else:
        i = wide_enough[0]
        kappa = math.exp(optimize.brentq(lambda x: float(excess(x)), grid[i], grid[i - 1], xtol=1e-10))
    return kappa * value, kappa * (1.0 - value)


def _one_sided_shape(edge_distance: float, tail: float) -> float:
    """``b`` of ``Beta(1, b)`` whose ``1 - tail`` quantile is ``edge_distance``."""
    if edge_distance >= 1.0:
        return 1.0
    return max(math.log(tail) / math.log1p(-edge_distance), 1e-3)


def _override(parameter: Parameter) -> tuple[float, float] | None:
    spec = dict(parameter.distribution)
    where = f"{parameter.location or parameter.id}.distribution"
    expected = ("expected { kind = \"beta\", alpha = A, beta = B } with A, B positive numbers, or "
                "{ kind = \"fixed\" }")
    kind = spec.get("kind")
    if kind == "fixed":
        if set(spec) != {"kind"}:
            raise SpecError(f"{where}: got {spec!r}; a fixed distribution takes no other keys; {expected}.")
        return None
    if kind != "beta":
        raise SpecError(f"{where}.kind: got {kind!r}; {expected}.")
    unknown = sorted(set(spec) - {"kind", "alpha", "beta"})
    if unknown:
        raise SpecError(f"{where}.{unknown[0]}: unknown key; {expected}.")
    shapes = []
    for key in ("alpha", "beta"):
        x = spec.get(key)
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x <= 0:
            raise SpecError(f"{where}.{key}: got {x!r}; {expected}.")
        shapes.append(float(x))
    return shapes[0], shapes[1]


def parameter_distributions(spec: Spec, *, range_coverage: float = DEFAULT_RANGE_COVERAGE) -> pd.DataFrame:
    """The distribution of every parameter, for auditing the mapping.

    Returns
    -------
    DataFrame
        ``id``, ``value``, ``low``, ``high``, ``kind`` (``beta``, ``fixed``), ``alpha``, ``beta``,
        ``mean``, ``lower``, ``upper`` (the central ``range_coverage`` interval), ``source``
        (``range`` or ``override``).

    Examples
    --------
    >>> from bayescramp.priors import load_spec
    >>> table = parameter_distributions(load_spec())
    >>> bool((table["lower"] <= table["upper"]).all())
    True
    """
    from scipy import stats

    tail = (1.0 - range_coverage) / 2.0
    rows = []
    for parameter_id, (_, parameter) in parameters_by_id(spec).items():
        shapes = beta_parameters(parameter, range_coverage=range_coverage)
        row = {"id": parameter_id, "value": parameter.value, "low": parameter.low, "high": parameter.high,
               "source": "override" if parameter.distribution is not None else "range"}
        if shapes is None:
            row.update(kind="fixed", alpha=math.nan, beta=math.nan, mean=parameter.value, lower=parameter.value,
                       upper=parameter.value)
        else:
            a, b = shapes
            lower, upper = stats.beta.ppf([tail, 1.0 - tail], a, b)
            row.update(kind="beta", alpha=a, beta=b, mean=a / (a + b), lower=float(lower), upper=float(upper))
        rows.append(row)
    return pd.DataFrame(rows, columns=["id", "value", "low", "high", "kind", "alpha", "beta", "mean", "lower",
                                       "upper", "source"])


def draw_parameters(spec: Spec, n_draws: int, rng: np.random.Generator | int | None = None, *,
                    range_coverage: float = DEFAULT_RANGE_COVERAGE) -> dict[str, np.ndarray]:
    """Independent draws of every parameter: ``{id: [n_draws]}`` (fixed ones repeat their value).

    Examples
    --------
    >>> from bayescramp.priors import load_spec
    >>> draws = draw_parameters(load_spec(), 4, rng=0)
    >>> draws["P(diuretic=thiazide|age_group=40_64)"].shape
    (4,)
    """
    if isinstance(n_draws, bool) or not isinstance(n_draws, (int, np.integer)) or n_draws < 1:
        raise InputError(f"n_draws: got {n_draws!r}; expected a positive whole number.")
    rng = as_generator(rng)
    draws = {}
    for parameter_id, (_, parameter) in parameters_by_id(spec).items():
        shapes = beta_parameters(parameter, range_coverage=range_coverage)
        if shapes is None:
            draws[parameter_id] = np.full(int(n_draws), parameter.value)
        else:
            draws[parameter_id] = rng.beta(shapes[0], shapes[1], size=int(n_draws))
            # a Beta with tiny shapes can return exactly 0 or 1; keep draws inside (0, 1) so a
            # drawn table never rules out evidence the model itself allows
            np.clip(draws[parameter_id], 1e-300, 1.0 - 1e-16, out=draws[parameter_id])
    return draws


def draw_tables(spec: Spec, network: CompiledNetwork, n_draws: int, rng: np.random.Generator | int | None = None,
                *, range_coverage: float = DEFAULT_RANGE_COVERAGE) -> dict[str, np.ndarray]:
    """Joint draws of every uncertain CPT: ``{node: [n_draws, *parent_cards, n_states]}``.

    Nodes whose parameters are all fixed are left out (they keep their compiled CPT).

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> spec = load_spec()
    >>> tables = draw_tables(spec, compile_spec(spec), 3, rng=0)
    >>> bool(np.allclose(tables["diuretic"].sum(axis=-1), 1.0))
    True
    """
    draws = draw_parameters(spec, n_draws, rng, range_coverage=range_coverage)
    # a parameter is fixed exactly when every draw repeats its value
    fixed = {k for k, (_, p) in parameters_by_id(spec).items() if (draws[k] == p.value).all() and
             (p.high <= p.low or (p.distribution or {}).get("kind") == "fixed")}
    uncertain = {node for k, (node, _) in parameters_by_id(spec).items() if k not in fixed}
    return {name: probability_table(spec, name, draws) for name in spec.nodes if name in uncertain}


def posterior_intervals(network: CompiledNetwork, evidence: BatchEvidence,
                        tables: Mapping[str, np.ndarray],
                        targets: Sequence[str], *, interval: float = 0.9,
                        chunk_rows: int = DEFAULT_CHUNK_ROWS, progress: bool | None = None
                        ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Central ``interval`` bounds of each target's posterior over parameter draws.

    Parameters
    ----------
    network : CompiledNetwork
    evidence : BatchEvidence
        Distinct evidence patterns.
    tables : mapping
        Node -> ``[n_draws, *parent_cards, n_states]`` from :func:`draw_tables`.
    targets : sequence of str
    interval : float
        Probability inside the bounds, e.g. 0.9 for the 5% and 95% quantiles.
    chunk_rows : int
        Rows × draws propagated at a time (memory bound).
    progress : bool, optional
        Show a progress bar (default: when there is more than one chunk and stderr is a terminal).

    Returns
    -------
    dict
        Node -> ``(lower, upper)``, each ``[n_rows, n_states]`` (NaN where the evidence is
        impossible under every draw).

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.evidence import BatchEvidence
    >>> from bayescramp.priors import load_spec
    >>> spec = load_spec()
    >>> network = compile_spec(spec)
    >>> tables = draw_tables(spec, network, 200, rng=1)
    >>> evidence = BatchEvidence.from_case(network.states, {"leg_cramps": "yes"})
    >>> bounds = posterior_intervals(network, evidence, tables, ["magnesium_deficiency"])
    >>> lower, upper = bounds["magnesium_deficiency"]
    >>> bool((lower <= upper).all())
    True
    """
    if not is_number(interval) or not 0.0 < float(interval) < 1.0:
        raise InputError(f"interval: got {interval!r}; expected a probability strictly between 0 and 1, e.g. 0.9.")
    n_rows = evidence.n_rows
    quantiles = [(1.0 - interval) / 2.0, (1.0 + interval) / 2.0]
    bounds = {t: (np.full((n_rows, len(network.states[t])), np.nan), np.full((n_rows, len(network.states[t])), np.nan))
              for t in targets}
    for start, stop, marginals in draw_marginals(network, evidence, tables, targets, chunk_rows=chunk_rows,
                                                 progress=progress):
        for target in targets:
            lower, upper = _quantiles(marginals[target], quantiles)
            bounds[target][0][start:stop] = lower
            bounds[target][1][start:stop] = upper
    return bounds


def draw_marginals(network: CompiledNetwork, evidence: BatchEvidence, tables: Mapping[str, np.ndarray],
                   targets: Sequence[str], *, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                   progress: bool | None = None) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
    """Each target's posterior under every parameter draw, a block of evidence patterns at a time.

    Patterns × draws are stacked as rows of one batched propagation with per-row CPDs
    (``chunk_rows`` rows at a time), so memory stays bounded whatever the number of patterns.

    Parameters
    ----------
    network : CompiledNetwork
    evidence : BatchEvidence
        Distinct evidence patterns.
    tables : mapping
        Node -> ``[n_draws, *parent_cards, n_states]`` from :func:`draw_tables`.
    targets : sequence of str
    chunk_rows, progress
        As for :func:`posterior_intervals`.

    Yields
    ------
    tuple
        ``(start, stop, marginals)``: patterns ``start:stop`` and, per target, their posteriors
        ``[stop - start, n_draws, n_states]`` (NaN where a draw makes the evidence impossible).

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.evidence import BatchEvidence
    >>> from bayescramp.priors import load_spec
    >>> spec = load_spec()
    >>> network = compile_spec(spec)
    >>> evidence = BatchEvidence.from_case(network.states, {"leg_cramps": "yes"})
    >>> blocks = draw_marginals(network, evidence, draw_tables(spec, network, 5, rng=1), ["anemia"])
    >>> [(start, stop, marginals["anemia"].shape) for start, stop, marginals in blocks]
    [(0, 1, (1, 5, 2))]
    """
    n_draws = next(iter(tables.values())).shape[0] if tables else 1
    patterns_per_chunk = max(1, chunk_rows // n_draws)
    starts = range(0, evidence.n_rows, patterns_per_chunk)
    iterator = starts
    if progress or (progress is None and len(starts) > 1):
        from tqdm.auto import tqdm

        # disable=None: shown only when stderr is a terminal
        iterator = tqdm(starts, desc="credible intervals", unit="chunk", leave=False,
                        disable=None if progress is None else False)
    for start in iterator:
        stop = min(start + patterns_per_chunk, evidence.n_rows)
        result = propagate_draws(network, evidence.rows(start, stop), tables, targets=list(targets))
        yield start, stop, {target: result.marginals[target] for target in targets}


def _quantiles(marginal: np.ndarray, quantiles: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles over axis 1 of ``[n_rows, n_draws, n_states]``, ignoring draws with NaN (impossible evidence)."""
    has_nan = np.isnan(marginal).any(axis=(1, 2))
    lower = np.full((marginal.shape[0], marginal.shape[2]), np.nan)
    upper = lower.copy()
    if (~has_nan).any():
        q = np.quantile(marginal[~has_nan], quantiles, axis=1)
        lower[~has_nan], upper[~has_nan] = q[0], q[1]
    for r in np.flatnonzero(has_nan):
        keep = ~np.isnan(marginal[r]).any(axis=1)
        if keep.any():
            q = np.quantile(marginal[r][keep], quantiles, axis=0)
            lower[r], upper[r] = q[0], q[1]
    return lower, upper


def score_intervals(spec: Spec, network: CompiledNetwork, data: pd.DataFrame, *, targets: Sequence[str] | None = None,
                    encoder: TableEncoder | None = None, interval: float = 0.9, n_draws: int = 1000,
                    rng: np.random.Generator | int | None = None, range_coverage: float = DEFAULT_RANGE_COVERAGE,
                    tables: Mapping[str, np.ndarray] | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                    progress: bool | None = None) -> pd.DataFrame:
    """Credible-interval columns for every row of a table: ``p_<node>_lower``, ``p_<node>_upper``.

    Parameters
    ----------
    spec : Spec
    network : CompiledNetwork
        Compiled from ``spec``.
    data : DataFrame
        As for :func:`bayescramp.scoring.score_frame`.
    targets : sequence of str, optional
        Default: :func:`bayescramp.scoring.default_targets`.
    encoder : callable, optional
        A codebook's encoder (default: columns named like nodes).
    interval : float
        Probability inside the bounds (0.9: the 5% and 95% quantiles over draws).
    n_draws : int
        Joint parameter draws.
    rng : numpy Generator or int seed, optional
    range_coverage : float
        Share of each parameter's distribution its range holds (see the module docstring).
    tables : mapping, optional
        Pre-drawn CPTs from :func:`draw_tables` (then ``n_draws``, ``rng`` and
        ``range_coverage`` are not used): pass the same draws to every chunk of a file so
        the chunks agree with scoring the whole table at once.
    chunk_rows, progress
        As for :func:`posterior_intervals`.

    Returns
    -------
    DataFrame
        One row per input row (same order), two columns per output column of
        :func:`bayescramp.scoring.target_columns`; NaN on rows with invalid cells or
        impossible evidence.

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.priors import load_spec
    >>> spec = load_spec()
    >>> frame = pd.DataFrame({"leg_cramps": ["yes", "no", "yes"]})
    >>> bounds = score_intervals(spec, compile_spec(spec), frame, n_draws=50, rng=0)
    >>> [c for c in bounds.columns if "potassium" in c]
    ['p_potassium_deficiency_lower', 'p_potassium_deficiency_upper']
    """
    evidence = BatchEvidence.from_frame(network, data, encoder=encoder or encode_frame)
    targets = check_targets(network, targets, evidence.nodes)
    if tables is None:
        tables = draw_tables(spec, network, n_draws, rng, range_coverage=range_coverage)
    return evidence_intervals(network, evidence, targets, tables, interval=interval, chunk_rows=chunk_rows,
                              progress=progress)


def evidence_intervals(network: CompiledNetwork, evidence: BatchEvidence, targets: Sequence[str],
                       tables: Mapping[str, np.ndarray], *, interval: float = 0.9,
                       chunk_rows: int = DEFAULT_CHUNK_ROWS, progress: bool | None = None) -> pd.DataFrame:
    """:func:`score_intervals` for evidence already built (e.g. one chunk of a streamed file).

    Each distinct evidence pattern is scored once under every draw in ``tables``; rows with
    unreadable cells get NaN.

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.evidence import encode_column
    >>> from bayescramp.priors import load_spec
    >>> spec = load_spec()
    >>> network = compile_spec(spec)
    >>> evidence = BatchEvidence.from_columns([encode_column(["yes", "no"], "leg_cramps", ("no", "yes"))])
    >>> bounds = evidence_intervals(network, evidence, ["iron_deficiency"], draw_tables(spec, network, 20, 0))
    >>> list(bounds.columns)
    ['p_iron_deficiency_lower', 'p_iron_deficiency_upper']
    """
    patterns, inverse = evidence.distinct()
    bounds = posterior_intervals(network, patterns, tables, targets, interval=interval, chunk_rows=chunk_rows,
                                 progress=progress)
    n_rows, invalid = evidence.n_rows, evidence.invalid
    columns = {}
    for name, node, k in target_columns(network, targets):
        for side, values in zip(("lower", "upper"), bounds[node]):
            column = values[inverse, k] if n_rows else np.zeros(0)
            column[invalid] = np.nan
            columns[f"{name}_{side}"] = column
    return pd.DataFrame(columns, index=pd.RangeIndex(n_rows))


def add_interval_columns(scored: pd.DataFrame, bounds: pd.DataFrame) -> pd.DataFrame:
    """``scored`` with each ``p_<node>_lower``/``_upper`` column placed right after its ``p_<node>``.

    Rows are matched by position; the result keeps ``scored``'s index.

    Examples
    --------
    >>> scored = pd.DataFrame({"p_a": [0.5], "status": ["ok"]})
    >>> list(add_interval_columns(scored, pd.DataFrame({"p_a_lower": [0.4], "p_a_upper": [0.6]})).columns)
    ['p_a', 'p_a_lower', 'p_a_upper', 'status']
    """
    clash = [c for c in bounds.columns if c in scored.columns]
    if clash:
        raise InputError(f"columns: input column {clash[0]!r} would be overwritten by a credible-interval column of "
                         "the same name; expected pass-through columns to have other names (rename it).")
    order = []
    for column in scored.columns:
        order.append(column)
        order.extend(c for c in (f"{column}_lower", f"{column}_upper") if c in bounds.columns)
    combined = pd.concat([scored.reset_index(drop=True), bounds.reset_index(drop=True)], axis=1)[order]
    combined.index = scored.index
    return combined


def case_intervals(spec: Spec, network: CompiledNetwork, evidence: BatchEvidence,
                   targets: Sequence[str], *, interval: float = 0.9, n_draws: int = 1000,
                   rng: np.random.Generator | int | None = None,
                   range_coverage: float = DEFAULT_RANGE_COVERAGE) -> dict[str, pd.DataFrame]:
    """Credible bounds of one case's posteriors: node -> DataFrame (index: states; ``lower``, ``upper``).

    Examples
    --------
    >>> from bayescramp.engine import compile_spec
    >>> from bayescramp.evidence import BatchEvidence
    >>> from bayescramp.priors import load_spec
    >>> spec = load_spec()
    >>> network = compile_spec(spec)
    >>> bounds = case_intervals(spec, network, BatchEvidence.from_case(network.states, {"leg_cramps": "yes"}),
    ...                         ["magnesium_deficiency"], n_draws=100, rng=0)
    >>> bounds["magnesium_deficiency"].columns.tolist()
    ['lower', 'upper']
    """
    tables = draw_tables(spec, network, n_draws, rng, range_coverage=range_coverage)
    bounds = posterior_intervals(network, evidence, tables, list(targets), interval=interval, progress=False)
    return {t: pd.DataFrame({"lower": bounds[t][0][0], "upper": bounds[t][1][0]},
                            index=pd.Index(network.states[t], name="state")) for t in targets}


def parameter_table(spec: Spec) -> pd.DataFrame:
    """Every free parameter, one row each, read from its :class:`~bayescramp.spec.Parameter` (never from its id).

    Columns ``id``, ``node``, ``parents`` (``parent=state,...``), ``state``, ``kind`` (``table``,
    ``leak``, ``link``), ``value``, ``low``, ``high``, ``source``, ``basis`` and ``note``.

    Examples
    --------
    >>> from bayescramp.priors import load_spec
    >>> table = parameter_table(load_spec())
    >>> sorted(table["kind"].unique())
    ['leak', 'link', 'table']
    """
    rows = [{"id": parameter_id, "node": node, "parents": parameter.configuration, "state": parameter.state,
             "kind": parameter.kind, "value": parameter.value, "low": parameter.low, "high": parameter.high,
             "source": parameter.source, "basis": parameter.basis, "note": parameter.note}
            for parameter_id, (node, parameter) in parameters_by_id(spec).items()]
    return pd.DataFrame(rows, columns=["id", "node", "parents", "state", "kind", "value", "low", "high", "source",
                                       "basis", "note"])

"""Population prevalence from complex surveys: weighted means of posteriors with design-based errors.

A survey row is not a simple random sample: its sampling weight says how many people of the
population it stands for, and the strata and primary sampling units (PSUs) it was drawn from
decide how precise a population figure is. For each target (a ``p_<node>`` column of a scored
table) and each subgroup, :func:`prevalence` gives

- the **expected population prevalence** ``R = sum(w_i p_i) / sum(w_i)`` over the rows of the
  subgroup whose status is ``ok`` (``p_i`` = the row's posterior P(present));
- its **design-based standard error** by Taylor linearisation with PSUs drawn with replacement
  within strata (R survey's default, ``svydesign(ids=~psu, strata=~strata, weights=~w,
  nest=TRUE)`` then ``svymean``/``svyby``). With the linearised values
  ``z_i = w_i (p_i - R) / sum(w)`` for rows in the subgroup and ``0`` elsewhere, their PSU
  totals ``z_hj`` and stratum means ``zbar_h`` over the ``n_h`` PSUs of stratum ``h``,
  ``V = sum_h (1 - f_h) n_h / (n_h - 1) sum_j (z_hj - zbar_h)^2``;
- a **confidence interval** ``R ± t(df) SE``: Student t with the design's degrees of freedom
  ``df = n_PSU - n_strata`` (of the whole design, also for subgroups, as samplics does and as
  R's ``confint(..., df = degf(design))``), not clipped to [0, 1];
- the **design effect** ``deff = V / V_srs``, R's ``svymean(..., deff = TRUE)``: ``V_srs =
  (1 - n / N) s^2 / n`` with ``n`` the subgroup's ok rows, ``N = sum(w)`` and
  ``s^2 = n / (n - 1) sum w (p - R)^2 / sum w``, the variance of a simple random sample of
  the same ``n`` drawn without replacement (NaN when ``sum(w) <= n``: weights not scaled to
  the population; and when the posteriors of the subgroup are all equal, as for a node no
  finding informs);
- ``n`` (ok rows), ``n_excluded`` (rows of the subgroup with another status, counted, never
  used) and ``sum_weights``.

**Subgroups are domains**, never subsets: a subgroup's rows outside it contribute zero to every
PSU total, and every PSU of the design counts in ``n_h`` even when none of its rows is in the
subgroup (or none is ``ok``). Subsetting before the variance would understate it. PSU codes are
nested within strata (PSU 1 of stratum 1 and PSU 1 of stratum 2 are different PSUs, as NHANES
codes them). Without ``psu`` every row is its own PSU; without ``strata`` there is one stratum;
without ``weights`` every weight is 1.

**Lonely PSUs** (a stratum of the design with a single PSU has no within-stratum variance),
``lonely_psu=`` as R's ``options(survey.lonely.psu = ...)``:

- ``"fail"`` (default, as in R): an error naming the stratum;
- ``"certainty"`` / ``"remove"``: the stratum contributes no variance (in a one-stage design
  the two are the same in R; samplics calls it ``skip``);
- ``"adjust"``: its PSU total is centred at the grand mean of all PSU totals instead of its
  own (conservative);
- ``"average"``: the variance of the other strata is scaled up by
  ``n_strata / n_strata_with_two_or_more_PSUs``.

A stratum with one PSU *inside a subgroup* but several in the design is not lonely (R's default
``survey.adjust.domain.lonely = FALSE``).

**fpc** (optional, per row, constant within a stratum, as R's ``fpc=``): a number above 1 is the
stratum's population count of PSUs ``N_h`` (``f_h = n_h / N_h``); a number in (0, 1] is the
sampling fraction ``f_h`` itself.

**Parameter uncertainty** (``interval=``): the posteriors rest on the prior file's numbers. With
``interval`` the parameters are drawn jointly ``n_draws`` times (:mod:`bayescramp.uncertainty`),
every distinct evidence pattern is scored under every draw, and the prevalence ``R_d`` and its
design variance ``V_d`` are computed per draw ``d`` with the same design. By the law of total
variance (the sample and the parameters independent), the total variance is
``V_total = mean_d V_d + var_d R_d`` (the design variance averaged over the parameters plus the
variance of the prevalence across parameter draws, as Rubin's rules combine within- and
between-imputation variance), and the combined interval is ``R ± t(df) sqrt(V_total)`` around
the estimate at the prior file's values. ``se_parameter = sd_d R_d`` shows the parameter part
alone.

Everything is vectorised: rows are reduced once to (PSU, subgroup cell) sums with ``np.bincount``
and every further step works on those sums; no Python loop runs over rows or subgroups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ._errors import InputError, one_of
from .evidence import BatchEvidence
from .scoring import STATUS_OK

__all__ = ["prevalence", "design_columns", "LONELY_PSU_RULES", "PREVALENCE_COLUMNS"]

#: Accepted values of ``lonely_psu`` (R's ``survey.lonely.psu`` options).
LONELY_PSU_RULES = ("fail", "certainty", "remove", "adjust", "average")
#: The columns of :func:`prevalence` after ``target``, ``group`` and the ``by`` columns.
PREVALENCE_COLUMNS = ("estimate", "se", "lower", "upper", "df", "deff", "n", "n_excluded", "sum_weights")
_INTERVAL_COLUMNS = ("se_parameter", "se_total", "lower_total", "upper_total")
_DESIGN_KEYS = ("weights", "strata", "psu", "fpc")
#: A weighted variance of the posteriors at or below this is rounding noise: no design effect.
_CONSTANT_SPREAD = 1e-20
#: Values (cells × draws × targets) held at once when the parameter draws are combined.
_DRAW_BLOCK_VALUES = 1 << 23


def design_columns(codebook: Any = None, **given: str | None) -> dict[str, Any]:
    """The design columns to use: those given, else the codebook's ``[design]`` table.

    Parameters
    ----------
    codebook : Codebook, optional
        Its ``design`` mapping (keys among ``weights``, ``strata``, ``psu``, ``fpc``), when it has one.
    **given
        ``weights=``, ``strata=``, ``psu=``, ``fpc=``: a column name (or values) or ``None``.

    Returns
    -------
    dict
        ``weights``, ``strata``, ``psu`` and ``fpc``, each a column name, values or ``None``.

    Examples
    --------
    >>> design_columns(None, weights="WTINT2YR", strata=None)
    {'weights': 'WTINT2YR', 'strata': None, 'psu': None, 'fpc': None}
    """
    defaults = dict(getattr(codebook, "design", None) or {})
    return {key: given.get(key) if given.get(key) is not None else defaults.get(key) for key in _DESIGN_KEYS}


@dataclass
class _Design:
    """A survey design reduced to integer codes (positions are rows of the table)."""

    weight: np.ndarray  # [n_rows] float
    psu: np.ndarray  # [n_rows] PSU code, unique across strata
    psu_stratum: np.ndarray  # [n_psu] stratum code of each PSU
    stratum_n_psu: np.ndarray  # [n_strata] PSUs in each stratum
    stratum_factor: np.ndarray  # [n_strata] 1 - f_h
    lonely: np.ndarray  # [n_strata] bool: one PSU
    degrees_of_freedom: int

    @property
    def n_psu(self) -> int:
        return len(self.psu_stratum)

    @property
    def n_strata(self) -> int:
        return len(self.stratum_n_psu)


def prevalence(scores: pd.DataFrame, *, weights: str | Sequence[float] | None = None,
               strata: str | Sequence | None = None, psu: str | Sequence | None = None,
               by: str | Sequence[str | Sequence[str]] | None = None, fpc: str | Sequence[float] | None = None,
               targets: Sequence[str] | None = None, level: float = 0.95, lonely_psu: str = "fail",
               interval: float | None = None, n_draws: int = 1000, rng: np.random.Generator | int | None = None,
               model: Any = None, data: pd.DataFrame | None = None, codebook: Any = None,
               source: str = "scores", row_label: Callable[[int], str] | None = None) -> pd.DataFrame:
    """Expected population prevalence of each target, overall and per subgroup, with design-based errors.

    Parameters
    ----------
    scores : DataFrame
        A scored table (``Model.score``, ``bayescramp score``): ``p_<node>`` columns and
        ``status``; only rows whose status is ``ok`` are used, the others are counted in
        ``n_excluded``. Without a ``status`` column every row counts.
    weights, strata, psu, fpc : str or array-like, optional
        Column names (looked up in ``scores``, then in ``data``) or values, one per row. Default:
        the codebook's ``[design]`` columns, else equal weights, one stratum, every row its own
        PSU, no finite population correction. Missing values are an error naming the row.
    by : str or sequence, optional
        Subgroups. Each entry is a column (its levels, e.g. ``"sex"``) or a tuple of columns (their
        cross, e.g. ``("sex", "age_group")``; ``"sex*age_group"`` says the same). The overall
        population always comes first. A missing value is a level of its own.
    targets : sequence of str, optional
        Nodes (``"potassium_deficiency"``) or ``p_`` columns; default every ``p_`` column
        (credible-bound columns ``_lower``/``_upper`` left out).
    level : float
        Coverage of the confidence interval (``lower``, ``upper``).
    lonely_psu : {"fail", "certainty", "remove", "adjust", "average"}
        What a stratum with one PSU contributes to the variance (see the module docstring).
    interval : float, optional
        Also combine sampling and parameter uncertainty: ``se_parameter``, ``se_total``,
        ``lower_total``, ``upper_total`` (coverage ``interval``) over ``n_draws`` joint parameter
        draws (``rng`` seeds them). Needs the model and the evidence: ``model=``, ``data=`` (and
        ``codebook=`` if the data needs one); :meth:`bayescramp.Model.prevalence` passes them.
    model : Model, optional
    data : DataFrame, optional
        The table ``scores`` came from, row for row (design and ``by`` columns missing from
        ``scores`` are read from it).
    codebook : Codebook or path, optional
        Its ``[design]`` table gives default design columns; it also encodes ``data`` for ``interval``.
    source : str
        What ``scores`` is called in messages (a file name).
    row_label : callable, optional
        Row position -> how messages name it (default ``row <index label>``).

    Returns
    -------
    DataFrame
        One row per target and subgroup: ``target`` (the node, or ``node__state``), ``group``
        (``all``, ``sex``, ``sex*age_group``), one column per ``by`` column holding the subgroup's
        level (missing where the column is not part of the group), then ``estimate`` (weighted
        mean of the posteriors: the expected share of the population with the condition),
        ``se``, ``lower``, ``upper`` (``level`` confidence interval), ``df``, ``deff``, ``n``,
        ``n_excluded``, ``sum_weights`` (and the ``interval`` columns). ``attrs`` holds the
        design summary (``n_strata``, ``n_psu``, ``lonely_strata``, ``statuses``).

    Raises
    ------
    InputError
        A missing column or value, a negative weight, a probability outside [0, 1] on an ok
        row, a stratum with one PSU under ``lonely_psu="fail"``, an fpc that varies within a stratum.

    Examples
    --------
    >>> scores = pd.DataFrame({"p_iron_deficiency": [0.1, 0.3, 0.2, 0.6], "status": ["ok"] * 4,
    ...                        "w": [1.0, 3.0, 2.0, 2.0], "stratum": [1, 1, 2, 2], "psu": [1, 2, 1, 2]})
    >>> table = prevalence(scores, weights="w", strata="stratum", psu="psu")
    >>> round(float(table["estimate"].iloc[0]), 4), round(float(table["se"].iloc[0]), 4), int(table["df"].iloc[0])
    (0.325, 0.1017, 2)
    """
    _check_arguments(scores, data, level=level, interval=interval, lonely_psu=lonely_psu, source=source)
    if row_label is None:
        row_label = _index_label(scores)
    from .codebook import resolve_codebook

    book = resolve_codebook(codebook)
    design_given = design_columns(book, weights=weights, strata=strata, psu=psu, fpc=fpc)
    lookup = _ColumnLookup(scores, data, source, row_label,
                           decoded=_node_states_of(model, data, book) if model is not None else None)
    columns = _target_columns(scores, targets, source)
    n_rows = len(scores)
    if n_rows == 0:
        raise InputError(f"{source}: has no rows; expected at least one scored row.")
    ok = scores["status"].eq(STATUS_OK).to_numpy(dtype=bool, na_value=False) if "status" in scores.columns \
        else np.ones(n_rows, dtype=bool)
    values = _probabilities(scores, columns, ok, source, row_label)
    design = _design(lookup, design_given, n_rows, lonely_psu)
    groupings = _groupings(by, lookup)
    by_columns = list(dict.fromkeys(c for _, cols in groupings for c in cols))
    fine, fine_levels, labels = _fine_groups(lookup, by_columns, n_rows)
    cells = _Cells.of(design, fine, ok, values)
    spread = _fine_spread(cells, values, fine, np.where(ok, design.weight, 0.0))
    mapped = [_GroupCells.of(cells, fine_levels, labels, [by_columns.index(c) for c in cols]) for _, cols in groupings]
    t_level = _t_quantile(level, design.degrees_of_freedom)
    parameter: list = [None] * len(groupings)
    t_interval = math.nan
    if interval is not None:
        parameter = _parameter_variances(model, data, book, columns, design, cells, mapped, ok, lonely_psu, n_draws,
                                         rng)
        t_interval = _t_quantile(interval, design.degrees_of_freedom)
    pieces = []
    for (label, cols), grouped, parameter_of_group in zip(groupings, mapped, parameter):
        estimate, variance = _ratio_estimates(design, grouped, grouped.value_sum, lonely_psu)
        deff = _design_effect(grouped, estimate, variance, spread)
        pieces.extend(_grouping_rows(grouped, label, cols, by_columns, columns, estimate, np.sqrt(variance), deff,
                                     degrees_of_freedom=design.degrees_of_freedom, t_level=t_level,
                                     parameter=parameter_of_group, t_interval=t_interval))
    table = _in_target_order(pd.concat(pieces, ignore_index=True), columns)
    table[["n", "n_excluded"]] = table[["n", "n_excluded"]].astype(np.int64)
    statuses = scores["status"].astype(str).value_counts().to_dict() if "status" in scores.columns \
        else {STATUS_OK: n_rows}
    table.attrs.update(n_rows=n_rows, n_strata=design.n_strata, n_psu=design.n_psu,
                       lonely_strata=int(design.lonely.sum()), lonely_psu=lonely_psu, level=level,
                       statuses={str(k): int(v) for k, v in statuses.items()},
                       design={k: v if isinstance(v, str) or v is None else "values"
                               for k, v in design_given.items()})
    return table


def _check_arguments(scores: Any, data: pd.DataFrame | None, *, level: float, interval: float | None,
                     lonely_psu: str, source: str) -> None:
    """Reject a call whose options are wrong before any column is read."""
    if not isinstance(scores, pd.DataFrame):
        raise InputError(f"prevalence: got {type(scores).__name__}; expected a pandas DataFrame of scores "
                         "(Model.score or bayescramp score).")
    if lonely_psu not in LONELY_PSU_RULES:
        raise InputError(f"lonely_psu: got {lonely_psu!r}; expected one of {one_of(LONELY_PSU_RULES)}.")
    _check_probability("level", level)
    if interval is not None:
        _check_probability("interval", interval)
    if data is not None and len(data) != len(scores):
        raise InputError(f"data: got {len(data)} rows for {len(scores)} rows of {source}; expected the table the "
                         "scores came from, row for row.")


def _index_label(scores: pd.DataFrame) -> Callable[[int], str]:
    """The default way messages name a row: by its index label, which the user sees, not its position."""
    labels = scores.index

    def row_label(position: int) -> str:
        return f"row {labels[position]}"
    return row_label


def _grouping_rows(grouped: _GroupCells, label: str, cols: tuple[str, ...], by_columns: Sequence[str],
                   columns: Sequence[str], estimate: np.ndarray, se: np.ndarray, deff: np.ndarray, *,
                   degrees_of_freedom: int, t_level: float, parameter: list | None, t_interval: float
                   ) -> list[pd.DataFrame]:
    """One grouping's result rows, a DataFrame per target (with the ``interval`` columns when ``parameter``)."""
    n_groups = grouped.n_groups
    pieces = []
    for t, column in enumerate(columns):
        piece = {"target": np.full(n_groups, column.removeprefix("p_"), dtype=object),
                 "group": np.full(n_groups, label, dtype=object)}
        # every by column appears on every row so groupings stack; it is missing outside its own grouping
        for c in by_columns:
            piece[c] = (grouped.levels[:, cols.index(c)] if c in cols else np.full(n_groups, pd.NA, dtype=object))
        piece.update(estimate=estimate[:, t], se=se[:, t], lower=estimate[:, t] - t_level * se[:, t],
                     upper=estimate[:, t] + t_level * se[:, t], df=np.full(n_groups, degrees_of_freedom),
                     deff=deff[:, t], n=grouped.n_ok, n_excluded=grouped.n_excluded,
                     sum_weights=grouped.group_weight)
        if parameter is not None:
            piece.update(_total_interval(estimate[:, t], *parameter[t], t_interval))
        pieces.append(pd.DataFrame(piece))
    return pieces


def _total_interval(estimate: np.ndarray, mean_design_variance: np.ndarray, between: np.ndarray,
                    t_interval: float) -> dict[str, np.ndarray]:
    """The ``interval`` columns: law of total variance, design variance plus variance across parameter draws."""
    total = np.sqrt(mean_design_variance + between)
    return dict(se_parameter=np.sqrt(between), se_total=total, lower_total=estimate - t_interval * total,
                upper_total=estimate + t_interval * total)


def _in_target_order(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The rows regrouped by target in the order of ``columns`` (groupings keep their order within a target)."""
    order = np.argsort(pd.Categorical(table["target"], categories=[c.removeprefix("p_") for c in columns]).codes,
                       kind="stable")
    return table.iloc[order].reset_index(drop=True)


def _show(value: Any) -> str:
    """A cell as messages print it (numpy scalars as plain numbers)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _check_probability(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise InputError(f"{name}: got {value!r}; expected a probability strictly between 0 and 1, e.g. 0.95.")


def _t_quantile(level: float, degrees_of_freedom: int) -> float:
    """Two-sided Student t quantile; NaN when the design has no degrees of freedom."""
    if degrees_of_freedom < 1:
        return math.nan
    from scipy.special import stdtrit

    return float(stdtrit(degrees_of_freedom, (1.0 + level) / 2.0))


def _node_states_of(model: Any, data: pd.DataFrame | None, book: Any) -> Callable[[str], pd.Series | None]:
    """Each row's observed state of a node read through the codebook (``by="sex"`` for a ``RIAGENDR`` column).

    A row whose finding is not one state (blank, a set of states, a likelihood or an
    unreadable cell) gets a missing value, a level of its own in ``by``.
    """
    found: dict[str, pd.Series | None] = {}

    def states_of(node: str) -> pd.Series | None:
        if data is None or node not in model.network.states:
            return None
        if node not in found:
            from .codebook import table_encoder

            # scoring has already reported the columns it did not use: not again here
            encoder = table_encoder(book, unmatched="ignore", require_evidence=False)
            evidence = BatchEvidence.from_frame(model.network, data, encoder=encoder)
            for j, name in enumerate(evidence.nodes):
                vectors = np.asarray(evidence.alphabets[j].vectors, dtype=float)
                one_state = (vectors > 0).sum(axis=1) == 1
                names = np.array([*model.network.states[name], None], dtype=object)
                state = np.where(one_state, vectors.argmax(axis=1), len(names) - 1)[evidence.codes[:, j]]
                found[name] = pd.Series(names[state])
        return found.get(node)

    return states_of


class _ColumnLookup:
    """Columns by name from ``scores``, then ``data``, then nodes decoded from ``data``; or values given directly."""

    def __init__(self, scores: pd.DataFrame, data: pd.DataFrame | None, source: str,
                 row_label: Callable[[int], str], decoded: Callable[[str], pd.Series | None] | None = None):
        self.scores, self.data, self.source, self.row_label = scores, data, source, row_label
        self.decoded = decoded

    def get(self, spec: Any, role: str) -> tuple[str, pd.Series]:
        """``(name used in messages, values)`` (a Series with positions as index)."""
        n_rows = len(self.scores)
        if isinstance(spec, str):
            for frame in (self.scores, self.data):
                if frame is not None and spec in frame.columns:
                    column = frame[spec]
                    if isinstance(column, pd.DataFrame):
                        raise InputError(f"{self.source}: column {spec!r} appears {column.shape[1]} times; expected "
                                         f"one column of that name for {role} (rename the others).")
                    return spec, column.reset_index(drop=True)
            states = self.decoded(spec) if self.decoded is not None else None
            if states is not None:   # a node observed through the codebook's columns
                return spec, states
            seen = list(self.scores.columns) + ([c for c in self.data.columns if c not in self.scores.columns]
                                                if self.data is not None else [])
            raise InputError(f"{self.source}: no column {spec!r} for {role}; expected one of {one_of(seen)}.")
        values = spec.to_numpy() if isinstance(spec, pd.Series) else np.asarray(spec)
        if values.ndim != 1 or len(values) != n_rows:
            raise InputError(f"{role}: got values of shape {values.shape}; expected a column name or one value per "
                             f"row ({n_rows}).")
        return f"{role} values", pd.Series(values)

    def missing_error(self, name: str, role: str, missing: np.ndarray, expected: str) -> InputError:
        rows = np.flatnonzero(missing)
        more = f" ({len(rows)} rows lack one)" if len(rows) > 1 else ""
        return InputError(f"{self.source}, {self.row_label(int(rows[0]))}, column {name!r}: got a missing value; "
                          f"expected {expected} on every row{more} ({role}).")


def _target_columns(scores: pd.DataFrame, targets: Sequence[str] | None, source: str) -> list[str]:
    names = [str(c) for c in scores.columns]
    probability = [c for c in names if c.startswith("p_")]
    bounds = {f"{c}_{side}" for c in probability for side in ("lower", "upper")}
    probability = [c for c in probability if c not in bounds]
    if targets is None:
        if not probability:
            raise InputError(f"{source}: got columns {one_of(names)}; expected p_<node> columns of a scored table "
                             "(bayescramp score or Model.score).")
        return probability
    chosen = []
    for target in [targets] if isinstance(targets, str) else targets:
        found = [c for c in probability if c == f"p_{target}" or c.startswith(f"p_{target}__") or c == target]
        if not found:
            raise InputError(f"targets: {target!r} has no p_ column in {source}; expected some of "
                             f"{one_of(c.removeprefix('p_') for c in probability)}.")
        chosen.extend(c for c in found if c not in chosen)
    return chosen


def _probabilities(scores: pd.DataFrame, columns: Sequence[str], ok: np.ndarray, source: str,
                   row_label: Callable[[int], str]) -> np.ndarray:
    """``[n_rows, n_targets]`` posteriors, 0 on rows that are not ok; bad values on ok rows are errors."""
    try:
        numbers = scores[list(columns)].to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        numbers = np.column_stack([pd.to_numeric(scores[c], errors="coerce").to_numpy(dtype=float) for c in columns])
    bad = ok[:, None] & ~((numbers >= 0.0) & (numbers <= 1.0))
    if bad.any():
        r, t = (int(i) for i in np.argwhere(bad)[0])
        column = columns[t]
        raise InputError(f"{source}, {row_label(r)}, column {column!r}: got {_show(scores[column].iloc[r])} on a "
                         "row with status ok; expected a probability in [0, 1] (give rows without a posterior "
                         "another status).")
    return np.where(ok[:, None], numbers, 0.0)


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and their labels, in sorted order where the labels sort (missing last)."""
    try:
        codes, labels = pd.factorize(values, sort=True, use_na_sentinel=False)
    except TypeError:
        codes, labels = pd.factorize(values, use_na_sentinel=False)
    return np.asarray(codes, dtype=np.int64), np.asarray(labels, dtype=object)


def _design(lookup: _ColumnLookup, given: Mapping[str, Any], n_rows: int, lonely_psu: str) -> _Design:
    if given["weights"] is None:
        weight = np.ones(n_rows)
    else:
        name, raw = lookup.get(given["weights"], "weights")
        missing = raw.isna().to_numpy()
        if missing.any():
            raise lookup.missing_error(name, "weights", missing, "a sampling weight")
        weight = (raw.to_numpy(dtype=float) if pd.api.types.is_numeric_dtype(raw)
                  else pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float))
        bad = ~(np.isfinite(weight) & (weight >= 0))
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise InputError(f"{lookup.source}, {lookup.row_label(r)}, column {name!r}: got {_show(raw.iloc[r])}; "
                             "expected a sampling weight, a finite number >= 0 (weights).")
    if given["strata"] is None:
        stratum, stratum_labels = np.zeros(n_rows, dtype=np.int64), np.array(["(all)"], dtype=object)
        strata_name = "strata"
    else:
        strata_name, raw = lookup.get(given["strata"], "strata")
        if raw.isna().any():
            raise lookup.missing_error(strata_name, "strata", raw.isna().to_numpy(), "a stratum")
        stratum, stratum_labels = _codes(raw)
    n_strata = len(stratum_labels)
    if given["psu"] is None:
        psu = np.arange(n_rows, dtype=np.int64)
        psu_labels = None
    else:
        psu_name, raw = lookup.get(given["psu"], "psu")
        if raw.isna().any():
            raise lookup.missing_error(psu_name, "psu", raw.isna().to_numpy(), "a primary sampling unit")
        within, psu_labels = _codes(raw)
        # PSUs are nested in strata: the pair names the PSU
        psu, _ = pd.factorize(stratum * len(psu_labels) + within)
        psu = np.asarray(psu, dtype=np.int64)
    n_psu = int(psu.max()) + 1 if n_rows else 0
    psu_stratum = np.zeros(n_psu, dtype=np.int64)
    psu_stratum[psu] = stratum
    stratum_n_psu = np.bincount(psu_stratum, minlength=n_strata)
    factor = np.ones(n_strata)
    if given["fpc"] is not None:
        factor = _fpc_factor(lookup, given["fpc"], stratum, stratum_labels, stratum_n_psu, strata_name)
    lonely = stratum_n_psu == 1
    if lonely.any() and lonely_psu == "fail":
        h = int(np.flatnonzero(lonely)[0])
        where = f"column {strata_name!r}: stratum {stratum_labels[h]!r}" if given["strata"] is not None \
            else "the design (one stratum)"
        what = "one PSU" if psu_labels is not None else "one row (every row is its own PSU)"
        others = f" ({int(lonely.sum()) - 1} more strata have one too)" if lonely.sum() > 1 else ""
        raise InputError(f"{lookup.source}, {where} has {what}{others}; expected at least two PSUs per stratum for a "
                         "with-replacement variance (pass lonely_psu=\"adjust\", \"certainty\", \"remove\" or "
                         "\"average\", --lonely-psu on the command line, or merge the stratum with a similar one).")
    return _Design(weight=weight, psu=psu, psu_stratum=psu_stratum, stratum_n_psu=stratum_n_psu,
                   stratum_factor=factor, lonely=lonely, degrees_of_freedom=int(n_psu - n_strata))


def _fpc_factor(lookup: _ColumnLookup, spec: Any, stratum: np.ndarray, stratum_labels: np.ndarray,
                stratum_n_psu: np.ndarray, strata_name: str) -> np.ndarray:
    """``1 - f_h`` per stratum from a per-row fpc (population PSU count > 1, or sampling fraction <= 1)."""
    name, raw = lookup.get(spec, "fpc")
    if raw.isna().any():
        raise lookup.missing_error(name, "fpc", raw.isna().to_numpy(), "a population size or sampling fraction")
    numbers = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(numbers) & (numbers > 0))
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise InputError(f"{lookup.source}, {lookup.row_label(r)}, column {name!r}: got {_show(raw.iloc[r])}; "
                         "expected a positive number: the stratum's population count of PSUs, or a sampling fraction "
                         "<= 1 (fpc).")
    n_strata = len(stratum_labels)
    low = np.full(n_strata, np.inf)
    high = np.full(n_strata, -np.inf)
    np.minimum.at(low, stratum, numbers)
    np.maximum.at(high, stratum, numbers)
    varies = low != high
    if varies.any():
        h = int(np.flatnonzero(varies)[0])
        raise InputError(f"{lookup.source}, column {name!r}: got values from {low[h]:g} to {high[h]:g} in stratum "
                         f"{stratum_labels[h]!r} of {strata_name!r}; expected one population size (or sampling "
                         "fraction) per stratum (fpc).")
    fraction = np.where(low > 1.0, stratum_n_psu / low, low)
    over = fraction > 1.0
    if over.any():
        h = int(np.flatnonzero(over)[0])
        raise InputError(f"{lookup.source}, column {name!r}: stratum {stratum_labels[h]!r} has {stratum_n_psu[h]} "
                         f"PSUs in the sample but a population of {low[h]:g}; expected a population count at least "
                         "the number sampled (fpc).")
    return 1.0 - fraction


def _groupings(by: Any, lookup: _ColumnLookup) -> list[tuple[str, tuple[str, ...]]]:
    """``[(label, columns)]``: the overall population, then each requested column or cross."""
    if by is None:
        entries: list = []
    elif isinstance(by, (str, tuple)):
        entries = [by]
    else:
        entries = list(by)
    groupings = [("all", ())]
    for entry in entries:
        if isinstance(entry, str):
            known = lookup.scores.columns if lookup.data is None else lookup.scores.columns.union(lookup.data.columns)
            columns = (entry,) if entry in known or "*" not in entry else tuple(entry.split("*"))
        elif isinstance(entry, (tuple, list)) and entry and all(isinstance(c, str) for c in entry):
            columns = tuple(entry)
        else:
            raise InputError(f"by: got {entry!r}; expected a column name or a tuple of column names (a cross).")
        if len(set(columns)) != len(columns):
            raise InputError(f"by: {entry!r} names a column twice; expected distinct columns in a cross.")
        groupings.append(("*".join(columns), columns))
    return groupings


def _fine_groups(lookup: _ColumnLookup, by_columns: Sequence[str], n_rows: int
                 ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Each row's cell of the cross of every ``by`` column, the cells' level codes ``[n_fine, n_by]``, the labels."""
    if not by_columns:
        return np.zeros(n_rows, dtype=np.int64), np.zeros((1, 0), dtype=np.int64), []
    codes, labels = [], []
    for column in by_columns:
        _, raw = lookup.get(column, "by")
        c, lab = _codes(raw)
        codes.append(c)
        labels.append(lab)
    key = np.zeros(n_rows, dtype=np.int64)
    for c, lab in zip(codes, labels):
        key = key * len(lab) + c
    fine, unique_keys = pd.factorize(key, sort=True)
    levels = np.zeros((len(unique_keys), len(by_columns)), dtype=np.int64)
    rest = np.asarray(unique_keys, dtype=np.int64)
    for j in range(len(by_columns) - 1, -1, -1):
        levels[:, j] = rest % len(labels[j])
        rest = rest // len(labels[j])
    return np.asarray(fine, dtype=np.int64), levels, labels


def _sum_by(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Sums of ``values`` (1-D or 2-D, rows) per code ``0..n-1``."""
    if values.ndim == 1:
        return np.bincount(codes, weights=values, minlength=n)
    out = np.zeros((n, values.shape[1]))
    if len(codes) == 0:
        return out
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    out[sorted_codes[starts]] = np.add.reduceat(values[order], starts, axis=0)
    return out


@dataclass
class _Cells:
    """Rows reduced to (PSU, fine subgroup) cells: the only pass over the rows."""

    row_cell: np.ndarray  # [n_rows]
    psu: np.ndarray  # [n_cells]
    fine: np.ndarray  # [n_cells]
    weight_sum: np.ndarray  # [n_cells] sum of w over ok rows
    n_ok: np.ndarray  # [n_cells]
    n_excluded: np.ndarray  # [n_cells]
    value_sum: np.ndarray  # [n_cells, n_targets] sum of w p over ok rows

    @classmethod
    def of(cls, design: _Design, fine: np.ndarray, ok: np.ndarray, values: np.ndarray) -> "_Cells":
        n_fine = int(fine.max()) + 1 if len(fine) else 1
        row_cell, keys = pd.factorize(design.psu * n_fine + fine)
        row_cell = np.asarray(row_cell, dtype=np.int64)
        keys = np.asarray(keys, dtype=np.int64)
        n_cells = len(keys)
        w_ok = np.where(ok, design.weight, 0.0)
        value_sum = np.column_stack([np.bincount(row_cell, weights=w_ok * values[:, t], minlength=n_cells)
                                     for t in range(values.shape[1])])
        return cls(row_cell=row_cell, psu=keys // n_fine, fine=keys % n_fine,
                   weight_sum=np.bincount(row_cell, weights=w_ok, minlength=n_cells),
                   n_ok=np.bincount(row_cell, weights=ok.astype(float), minlength=n_cells),
                   n_excluded=np.bincount(row_cell, weights=(~ok).astype(float), minlength=n_cells),
                   value_sum=value_sum)


@dataclass
class _GroupCells:
    """One grouping's (PSU, subgroup) cells, built from the fine cells."""

    n_groups: int
    levels: np.ndarray  # [n_groups, n_columns] labels of each subgroup
    of_fine: np.ndarray  # [n_fine] subgroup of each cell of the full cross
    of_fine_cell: np.ndarray  # [n_fine_cells] index of the grouping's cell
    psu: np.ndarray  # [n_cells]
    group: np.ndarray  # [n_cells]
    weight_sum: np.ndarray  # [n_cells]
    value_sum: np.ndarray  # [n_cells, n_targets]
    group_weight: np.ndarray  # [n_groups]
    n_ok: np.ndarray  # [n_groups]
    n_excluded: np.ndarray  # [n_groups]

    @classmethod
    def of(cls, cells: _Cells, fine_levels: np.ndarray, labels: Sequence[np.ndarray], picks: Sequence[int]
           ) -> "_GroupCells":
        if picks:
            key = np.zeros(len(fine_levels), dtype=np.int64)
            for j in picks:
                key = key * len(labels[j]) + fine_levels[:, j]
            fine_group, group_keys = pd.factorize(key, sort=True)
            group_keys = np.asarray(group_keys, dtype=np.int64)
            n_groups = len(group_keys)
            levels = np.empty((n_groups, len(picks)), dtype=object)
            rest = group_keys.copy()
            for position in range(len(picks) - 1, -1, -1):
                names = labels[picks[position]]
                levels[:, position] = names[rest % len(names)]
                rest = rest // len(names)
        else:
            fine_group, n_groups = np.zeros(len(fine_levels), dtype=np.int64), 1
            levels = np.empty((1, 0), dtype=object)
        fine_group = np.asarray(fine_group, dtype=np.int64)
        cell_group = fine_group[cells.fine]
        of_fine_cell, keys = pd.factorize(cells.psu * n_groups + cell_group)
        of_fine_cell = np.asarray(of_fine_cell, dtype=np.int64)
        keys = np.asarray(keys, dtype=np.int64)
        n_cells = len(keys)
        group = keys % n_groups
        return cls(n_groups=n_groups, levels=levels, of_fine=fine_group, of_fine_cell=of_fine_cell,
                   psu=keys // n_groups, group=group,
                   weight_sum=_sum_by(of_fine_cell, cells.weight_sum, n_cells),
                   value_sum=_sum_by(of_fine_cell, cells.value_sum, n_cells),
                   group_weight=_sum_by(cell_group, cells.weight_sum, n_groups),
                   n_ok=np.rint(_sum_by(cell_group, cells.n_ok, n_groups)),
                   n_excluded=np.rint(_sum_by(cell_group, cells.n_excluded, n_groups)))


def _ratio_estimates(design: _Design, grouped: _GroupCells, value_sum: np.ndarray, lonely_psu: str
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Weighted means ``[n_groups, K]`` and their linearised with-replacement variances.

    ``value_sum[n_cells, K]`` holds each (PSU, subgroup) cell's ``sum w p`` for ``K`` columns
    (targets, or parameter draws of one target).
    """
    n_groups, n_values = grouped.n_groups, value_sum.shape[1]
    total_weight = grouped.group_weight
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = _sum_by(grouped.group, value_sum, n_groups) / total_weight[:, None]
        # PSU totals of z_i = w_i (p_i - R) / sum(w), zero outside the subgroup
        z = (value_sum - estimate[grouped.group] * grouped.weight_sum[:, None]) / total_weight[grouped.group][:, None]
    cell_stratum = design.psu_stratum[grouped.psu]
    stratum_group, keys = pd.factorize(cell_stratum * n_groups + grouped.group)
    stratum_group = np.asarray(stratum_group, dtype=np.int64)
    keys = np.asarray(keys, dtype=np.int64)
    n_pairs = len(keys)
    pair_stratum, pair_group = keys // n_groups, keys % n_groups
    n_h = design.stratum_n_psu[pair_stratum].astype(float)
    n_present = np.bincount(stratum_group, minlength=n_pairs).astype(float)
    lonely = design.lonely[pair_stratum]
    centre = _sum_by(stratum_group, z, n_pairs) / n_h[:, None]
    if lonely_psu == "adjust" and lonely.any():
        # the grand mean of every PSU total of the subgroup (zero up to rounding for a mean)
        grand = _sum_by(grouped.group, z, n_groups) / design.n_psu
        centre[lonely] = grand[pair_group[lonely]]
    # PSUs of the stratum with no row in the subgroup have total 0: they add (0 - centre)^2 each
    squares = _sum_by(stratum_group, (z - centre[stratum_group]) ** 2, n_pairs) \
        + (n_h - n_present)[:, None] * centre ** 2
    factor = design.stratum_factor[pair_stratum]
    scale = np.where(lonely, factor, factor * n_h / np.maximum(n_h - 1.0, 1.0))
    if lonely_psu in ("certainty", "remove", "average"):
        scale = np.where(lonely, 0.0, scale)
    variance = _sum_by(pair_group, squares * scale[:, None], n_groups)
    if lonely_psu == "average" and design.lonely.any():
        n_kept = int((~design.lonely).sum())
        variance = variance * (design.n_strata / n_kept) if n_kept else np.full_like(variance, np.nan)
    variance[total_weight <= 0] = np.nan
    return estimate, np.broadcast_to(variance, (n_groups, n_values)).copy()


def _fine_spread(cells: _Cells, values: np.ndarray, fine: np.ndarray, weight: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell of the full ``by`` cross: ``sum w``, the weighted mean and ``sum w (p - mean)^2`` (one pass over rows).

    Any subgroup is a union of these cells, so its spread around its own mean ``R`` is
    ``sum over cells (spread + w_cell (mean - R)^2)``: exact, without the cancellation of
    ``sum w p^2 - R sum w p``.
    """
    n_fine = int(fine.max()) + 1 if len(fine) else 1
    fine_weight = np.bincount(cells.fine, weights=cells.weight_sum, minlength=n_fine)
    with np.errstate(invalid="ignore", divide="ignore"):
        fine_mean = np.nan_to_num(_sum_by(cells.fine, cells.value_sum, n_fine) / fine_weight[:, None])
    spread = np.column_stack([np.bincount(fine, weights=weight * (values[:, k] - fine_mean[fine, k]) ** 2,
                                          minlength=n_fine) for k in range(values.shape[1])])
    return fine_weight, fine_mean, spread


def _design_effect(grouped: _GroupCells, estimate: np.ndarray, variance: np.ndarray,
                   fine: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """R's ``deff = TRUE``: the variance over that of a simple random sample (without replacement) of the same n.

    NaN where the weights do not add up to more than n (not scaled to a population), n < 2,
    or the posteriors of the subgroup are all equal (no spread to compare with).
    """
    fine_weight, fine_mean, fine_spread = fine
    between = fine_weight[:, None] * (fine_mean - np.nan_to_num(estimate)[grouped.of_fine]) ** 2
    spread = _sum_by(grouped.of_fine, fine_spread + between, grouped.n_groups)
    n = grouped.n_ok[:, None]
    total = grouped.group_weight[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        s2 = n / (n - 1.0) * spread / total
        srs = s2 * (total - n) / (total * n)
        deff = variance / srs
        constant = spread <= _CONSTANT_SPREAD * total
    deff[np.broadcast_to((total <= n) | (n < 2), deff.shape) | constant] = np.nan
    return deff


def _parameter_variances(model: Any, data: pd.DataFrame | None, book: Any, columns: Sequence[str], design: _Design,
                         cells: _Cells, mapped: Sequence[_GroupCells], ok: np.ndarray, lonely_psu: str,
                         n_draws: int, rng: np.random.Generator | int | None
                         ) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Per grouping and target: ``(mean over draws of the design variance, variance of the estimate over draws)``."""
    from .scoring import encode_frame
    from .uncertainty import draw_tables

    spec, network = getattr(model, "spec", None), getattr(model, "network", None)
    if spec is None or network is None or data is None:
        raise InputError("interval: needs the model and the evidence behind the scores to score parameter draws; "
                         "expected model= and data= (Model.prevalence passes both), or interval=None.")
    nodes, picks = _posterior_picks(network, columns)
    encoder = book.encoder() if book is not None else None
    patterns, inverse = BatchEvidence.from_frame(network, data, encoder=encoder or encode_frame).distinct()
    pairs = _PatternCells.of(inverse, cells, design.weight, ok)
    tables = draw_tables(spec, network, n_draws, rng)
    n_cells = len(cells.psu)
    # draws are scored in blocks so that cells x draws x targets stays within memory
    block = max(1, _DRAW_BLOCK_VALUES // max(1, n_cells * len(columns)))
    estimates = [[[] for _ in columns] for _ in mapped]
    variances = [[[] for _ in columns] for _ in mapped]
    for first in range(0, n_draws, block):
        sub_tables = {node: values[first:first + block] for node, values in tables.items()}
        sums = _draw_cell_sums(network, patterns, sub_tables, nodes, [picks[c] for c in columns], pairs, n_cells)
        for g, grouped in enumerate(mapped):
            for t in range(len(columns)):
                value_sum = _sum_by(grouped.of_fine_cell, sums[t], len(grouped.psu))
                estimate, variance = _ratio_estimates(design, grouped, value_sum, lonely_psu)
                estimates[g][t].append(estimate)
                variances[g][t].append(variance)
    return [[_combine_draws(np.concatenate(estimates[g][t], axis=1), np.concatenate(variances[g][t], axis=1))
             for t in range(len(columns))] for g in range(len(mapped))]


def _posterior_picks(network: Any, columns: Sequence[str]) -> tuple[list[str], dict[str, tuple[str, int]]]:
    """The target nodes behind ``columns`` and, per column, its ``(node, state index)``; unknown ones are errors."""
    from .scoring import target_columns

    nodes = list(dict.fromkeys(c.removeprefix("p_").split("__")[0] for c in columns))
    unknown = [n for n in nodes if n not in network.states]
    if unknown:
        raise InputError(f"interval: column p_{unknown[0]} names no node of the model; expected targets among "
                         f"{one_of(network.names)}.")
    picks = {name: (node, k) for name, node, k in target_columns(network, nodes)}
    missing = [c for c in columns if c not in picks]
    if missing:
        raise InputError(f"interval: column {missing[0]!r} is not a posterior column of the model; expected some of "
                         f"{one_of(picks)}.")
    return nodes, picks


@dataclass
class _PatternCells:
    """The ok rows reduced to (evidence pattern, fine cell) pairs with their summed weights, sorted by pattern."""

    pattern: np.ndarray  # [n_pairs] distinct evidence pattern
    cell: np.ndarray  # [n_pairs] (PSU, fine subgroup) cell
    weight: np.ndarray  # [n_pairs] sum of w

    @classmethod
    def of(cls, inverse: np.ndarray, cells: _Cells, weight: np.ndarray, ok: np.ndarray) -> "_PatternCells":
        rows = np.flatnonzero(ok)
        n_cells = len(cells.psu)
        pair, pair_keys = pd.factorize(inverse[rows] * n_cells + cells.row_cell[rows], sort=True)
        pair_keys = np.asarray(pair_keys, dtype=np.int64)
        pair_weight = np.bincount(np.asarray(pair, dtype=np.int64), weights=weight[rows], minlength=len(pair_keys))
        return cls(pattern=pair_keys // n_cells, cell=pair_keys % n_cells, weight=pair_weight)


def _draw_cell_sums(network: Any, patterns: Any, sub_tables: Mapping[str, np.ndarray], nodes: Sequence[str],
                    picks: Sequence[tuple[str, int]], pairs: _PatternCells, n_cells: int) -> np.ndarray:
    """``[n_targets, n_cells, n_draws]``: each cell's ``sum w p`` under each parameter draw of ``sub_tables``."""
    from .uncertainty import draw_marginals

    n_draws = len(next(iter(sub_tables.values())))
    sums = np.zeros((len(picks), n_cells, n_draws))
    # progress=None: a bar on a terminal only
    for start, stop, marginals in draw_marginals(network, patterns, sub_tables, nodes, progress=None):
        # the pairs are sorted by pattern, so this chunk of patterns is one slice of them
        lo, hi = np.searchsorted(pairs.pattern, [start, stop])
        for t, (node, k) in enumerate(picks):
            contribution = pairs.weight[lo:hi, None] * marginals[node][pairs.pattern[lo:hi] - start, :, k]
            np.add.at(sums[t], pairs.cell[lo:hi], contribution)
    return sums


def _combine_draws(estimate: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per subgroup, from ``[n_groups, n_draws]`` arrays: the mean design variance and the variance across draws."""
    with np.errstate(invalid="ignore", divide="ignore"):
        # draws where a subgroup has no weight give NaN; they count in neither mean
        valid = np.isfinite(estimate).sum(axis=1)
        mean_variance = np.where(valid > 0, np.nansum(variance, axis=1) / np.maximum(valid, 1), np.nan)
        mean_estimate = np.nansum(estimate, axis=1) / np.maximum(valid, 1)
        between = np.nansum((estimate - mean_estimate[:, None]) ** 2, axis=1) / (valid - 1.0)
    between[valid < 2] = np.nan
    return mean_variance, between

"""The user's object: :func:`load_model` and :class:`Model`, a thin facade over the function modules."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ._arguments import as_path, renamed
from ._errors import InputError
from .codebook import Codebook
from .engine import CompiledNetwork, compile_spec
from .posterior import Posterior, case_posterior, node_states, prior_marginals, score_table
from .priors import load_spec
from .scoring import default_targets
from .simulate import simulate_cohort
from .spec import Spec, check, parameters_by_id, with_parameters
from .uncertainty import parameter_table

__all__ = ["load_model", "Model", "Posterior"]

_NETWORK_SUFFIXES = (".bif", ".bif.gz", ".xmlbif", ".xml", ".xml.gz")


def load_model(*paths: str | Path) -> "Model":
    """Load a model from prior files (later files overlay earlier ones) or a BIF/XMLBIF network.

    Parameters
    ----------
    *paths : str or Path
        TOML prior files, e.g. ``"priors/default.toml", "priors/older_adults.toml"``; a bundled
        name such as ``"older_adults"`` works too. No argument gives the bundled default.
        A single ``.bif``/``.xmlbif`` path reads that network (through pgmpy).

    Returns
    -------
    Model

    Examples
    --------
    >>> model = load_model()
    >>> model.states("diuretic")
    ('none', 'thiazide', 'loop', 'potassium_sparing', 'thiazide_potassium_sparing')
    """
    paths = tuple(as_path(p, argument="paths", caller="load_model") for p in paths)
    if any(str(p).lower().endswith(_NETWORK_SUFFIXES) for p in paths):
        if len(paths) != 1:
            raise InputError(f"load_model: got {len(paths)} paths including a network file; expected a single "
                             ".bif/.xmlbif file, or TOML prior files only.")
        from .reference import read_network

        return Model(read_network(paths[0]))
    if not paths:
        return Model(load_spec())
    # the bundled default is the base for overlays given on their own
    return Model(load_spec(*paths))


class Model:
    """A discrete Bayesian network with exact, vectorised inference.

    A facade: every method is one call to the function module that owns the logic
    (:mod:`~bayescramp.posterior`, :mod:`~bayescramp.simulate`, :mod:`~bayescramp.explain`,
    :mod:`~bayescramp.sensitivity`, :mod:`~bayescramp.prevalence`, :mod:`~bayescramp.learning`,
    :mod:`~bayescramp.uncertainty`, :mod:`~bayescramp.reference`), on ``self.spec`` and
    ``self.network``. Arguments follow the package's vocabulary (README "API conventions"):
    keyword-only ``targets=``, ``rng=``, ``codebook=`` (object or path); per-row results keep the
    input's index.

    Parameters
    ----------
    spec : Spec
        A model specification (from :func:`load_model`, prior files or pgmpy).

    Examples
    --------
    >>> model = load_model()
    >>> result = model.posterior({"leg_cramps": "yes", "diuretic": "thiazide"})
    >>> bool(0 < result["potassium_deficiency"]["present"] < 1)
    True
    """

    def __init__(self, spec: Spec):
        if not isinstance(spec, Spec):
            raise InputError(f"Model: got {type(spec).__name__}; expected a Spec (use bayescramp.load_model(...) for "
                             "prior or network files, or Model.from_pgmpy(network)).")
        self.spec: Spec = check(spec)
        self.network: CompiledNetwork = compile_spec(self.spec)

    @classmethod
    def from_pgmpy(cls, network) -> "Model":
        """A model from a pgmpy ``DiscreteBayesianNetwork`` (its CPDs become imported parameters)."""
        from .reference import from_pgmpy

        return cls(from_pgmpy(network))

    @property
    def nodes(self) -> list[str]:
        """Node names, parents before children."""
        return list(self.network.names)

    def states(self, node: str) -> tuple[str, ...]:
        """The states of ``node``."""
        return node_states(self.network, node)

    @property
    def default_targets(self) -> list[str]:
        """Nodes reported by default: ``meta.targets``, else the nodes that are not observable.

        (:meth:`score` also leaves out any node its data observes; see :class:`bayescramp.spec.ModelInfo`.)
        """
        return default_targets(self.network, self.network.info.observable)

    @property
    def evidence_nodes(self) -> list[str]:
        """Nodes a survey observes.

        The prior file's ``meta.observable`` list, else the roots and leaves that are not
        default targets (asia: asia, smoke, xray, dysp); see :class:`bayescramp.spec.ModelInfo`.
        """
        return list(self.network.info.observable)

    @cached_property
    def _prior_marginals(self) -> dict[str, pd.Series]:
        return prior_marginals(self.network)

    def posterior(self, evidence: Mapping[str, Any] | None = None, *, targets: str | Sequence[str] | None = None,
                  interval: float | None = None, n_draws: int = 1000,
                  rng: np.random.Generator | int | None = None) -> Posterior:
        """Exact posterior marginals for one case (:func:`bayescramp.posterior.case_posterior`).

        Parameters
        ----------
        evidence : mapping, optional
            Node -> a state (``"yes"``), a set of states (``["thiazide", "loop"]``) or a
            likelihood (``{"yes": 0.8, "no": 0.2}``); also a table row (pandas Series) or
            ``(node, finding)`` pairs. None, NaN or blank text is no finding; a node given twice
            with different findings is an error.
        targets : str or sequence of str, optional
            Nodes to report; default every unobserved node (node with soft or set evidence
            count as unobserved).
        interval : float, optional
            Also give central credible bounds (e.g. 0.9: 5% and 95%) over the uncertainty of
            every parameter, drawn jointly ``n_draws`` times (see :mod:`bayescramp.uncertainty`);
            ``result.intervals[node]``. ``rng`` (a Generator or seed) makes them reproducible.

        Returns
        -------
        Posterior

        Raises
        ------
        EvidenceError
            Unknown node or state, a node given twice with different findings, or evidence
            with probability zero under the model.

        Examples
        --------
        >>> model = load_model()
        >>> result = model.posterior({"leg_cramps": "yes"}, targets=["magnesium_deficiency"])
        >>> round(float(result["magnesium_deficiency"].sum()), 12)
        1.0
        """
        return case_posterior(self.spec, self.network, evidence, targets=targets, interval=interval,
                              n_draws=n_draws, rng=rng, priors=self._prior_marginals)

    def marginals(self) -> Posterior:
        """Prior predictive marginals of every node (no evidence).

        Examples
        --------
        >>> round(float(load_model().marginals()["diuretic"].sum()), 12)
        1.0
        """
        return Posterior(self._prior_marginals, 0.0, {})

    def score(self, data: pd.DataFrame, *, targets: str | Sequence[str] | None = None,
              codebook: Codebook | str | Path | None = None, on_invalid: str = "error", interval: float | None = None,
              n_draws: int = 1000, rng: np.random.Generator | int | None = None,
              unmatched: str = "warn") -> pd.DataFrame:
        """Posteriors for every row of a table (vectorised; one output row per input row, index kept).

        Parameters
        ----------
        data : DataFrame
            Columns named like nodes hold state names (or yes/no spellings); blank/NaN is no
            evidence; other columns pass through.
        targets : str or sequence of str, optional
            Default: the model's default targets (``meta.targets`` of its priors file, else every
            node neither observable nor observed; see :class:`bayescramp.spec.ModelInfo`).
        codebook : Codebook or path, optional
            Maps survey columns and codes to nodes and states (:func:`bayescramp.load_codebook`).
        on_invalid : {"error", "flag"}
            Raise on unknown values, or flag their rows in ``status``.
        interval : float, optional
            Also give ``p_<node>_lower`` and ``p_<node>_upper`` after each ``p_<node>``: central
            credible bounds (0.9: 5% and 95%) over ``n_draws`` joint draws of every parameter
            (see :mod:`bayescramp.uncertainty`); ``rng`` (a Generator or seed) makes them
            reproducible.
        unmatched : {"warn", "error", "ignore"}
            Columns that look like evidence but are not used (``leg cramp``, ``fatigue_2``; see
            :func:`bayescramp.codebook.evidence_like_columns`): an
            :class:`~bayescramp.UnmatchedColumnsWarning`, an :class:`InputError`, or nothing. Names
            match nodes ignoring case and surrounding spaces.

        Returns
        -------
        DataFrame
            Pass-through columns, ``p_<node>``, ``evidence_probability``,
            ``log_evidence_probability``, ``status``; the index is ``data``'s.

        Examples
        --------
        >>> frame = pd.DataFrame({"id": [1, 2], "leg_cramps": ["yes", None]})
        >>> list(load_model().score(frame).columns)[:2]
        ['id', 'p_vitamin_d_deficiency']
        """
        return score_table(self.spec, self.network, data, targets=targets, codebook=codebook, on_invalid=on_invalid,
                           interval=interval, n_draws=n_draws, rng=rng, unmatched=unmatched)

    def prevalence(self, data: pd.DataFrame, *, codebook: Codebook | str | Path | None = None,
                   targets: str | Sequence[str] | None = None, on_invalid: str = "error", **options) -> pd.DataFrame:
        """Expected population prevalence of each target, overall and per subgroup, from a complex survey.

        Scores ``data`` (as :meth:`score`), then calls :func:`bayescramp.prevalence.prevalence` with
        ``data`` and this model, so design and ``by`` columns are read from ``data`` and
        ``interval=`` can score parameter draws. ``options``: ``weights``, ``strata``, ``psu``,
        ``fpc`` (default: the codebook's ``[design]`` columns), ``by``, ``level``, ``lonely_psu``,
        ``interval``, ``n_draws``, ``rng``.

        Examples
        --------
        >>> frame = pd.DataFrame({"fatigue": ["yes", "no", "no", None], "w": [2.0, 1.0, 1.0, 1.0],
        ...                       "stratum": [1, 1, 2, 2], "unit": [1, 2, 1, 2]})
        >>> table = load_model().prevalence(frame, weights="w", strata="stratum", psu="unit")
        >>> table["group"].unique().tolist(), table["n"].unique().tolist()
        (['all'], [4])
        """
        from .prevalence import prevalence

        return prevalence(self.score(data, targets=targets, codebook=codebook, on_invalid=on_invalid), data=data,
                          model=self, codebook=codebook, **options)

    def simulate(self, n: int, *, rng: np.random.Generator | int | None = None, missing: float = 0.0,
                 truth: bool = False) -> pd.DataFrame:
        """Simulate a cohort by forward sampling (:func:`bayescramp.simulate.simulate_cohort`).

        Parameters
        ----------
        n : int
            Number of rows.
        rng : numpy Generator or int seed, optional
        missing : float
            Probability that each evidence cell is blanked (set to None).
        truth : bool
            Also return the hidden nodes' sampled states (never blanked).

        Returns
        -------
        DataFrame
            The evidence columns (:attr:`evidence_nodes`: for the default model its observable
            roots, symptoms and cramp timing), then the hidden columns if ``truth``.

        Examples
        --------
        >>> cohort = load_model().simulate(3, rng=0)
        >>> len(cohort)
        3
        """
        return simulate_cohort(self.network, n, rng=rng, missing=missing, truth=truth)

    @renamed(target="targets")
    def explain(self, evidence: Mapping[str, Any] | pd.DataFrame, *, targets: str | Sequence[str] | None = None,
                order: Sequence[str] | None = None, codebook: Codebook | str | Path | None = None) -> pd.DataFrame:
        """Why each target has its posterior: retractions and weights of evidence per finding.

        One case (a mapping) or a whole table (a DataFrame, vectorised; the result's index holds
        each line's input row). ``logit(prior) + sum(weight) = logit(posterior)``, the findings
        entering in ``order`` (default: the model's node order). See
        :func:`bayescramp.explain.explain` for the columns. ``target=`` is the deprecated spelling
        of ``targets=``.

        Examples
        --------
        >>> table = load_model().explain({"diuretic": "thiazide", "cramp_timing": "night"},
        ...                               targets="potassium_deficiency")
        >>> table[["finding", "value"]].values.tolist()
        [['diuretic', 'thiazide'], ['cramp_timing', 'night']]
        """
        from .explain import explain

        return explain(self.network, evidence, targets=targets, order=order, codebook=codebook)

    @renamed(over="targets")
    def most_probable(self, evidence: Mapping[str, Any] | pd.DataFrame, *,
                      targets: str | Sequence[str] | None = None,
                      codebook: Codebook | str | Path | None = None) -> pd.DataFrame:
        """The jointly most likely states of ``targets`` (default: the default targets) and P(them | evidence), per row.

        See :func:`bayescramp.explain.most_probable` (ties: the first configuration in
        enumeration order wins). ``over=`` is the deprecated spelling of ``targets=``.

        Examples
        --------
        >>> best = load_model().most_probable({"pale_skin": "yes"}, targets=["iron_deficiency", "anemia"])
        >>> best["status"].tolist()
        ['ok']
        """
        from .explain import most_probable

        return most_probable(self.network, evidence, targets=targets, codebook=codebook)

    @renamed(target="targets", positional=("targets",))
    def sensitivity(self, evidence: Mapping[str, Any] | pd.DataFrame, *, targets: tuple[str, str] | str | None = None,
                    parameters: Sequence[str] | None = None, summary: str = "mean",
                    codebook: Codebook | str | Path | None = None) -> pd.DataFrame:
        """How ``P(target | evidence)`` depends on each parameter, in closed form (one case or a cohort).

        ``targets`` names one posterior (``"node=state"``, a ``(node, state)`` pair, or a node with
        a positive state); default the model's sensitivity target (``meta.sensitivity_target``).
        See :func:`bayescramp.sensitivity.sensitivity` for the columns; ``summary="mean"``
        (default for a cohort) averages over rows, ``"rows"`` gives every row (index kept).
        ``target=`` (or the target by position) is the deprecated spelling.

        Examples
        --------
        >>> table = load_model().sensitivity({"leg_cramps": "yes", "diuretic": "thiazide"},
        ...                                  targets="potassium_deficiency=present")
        >>> table.columns[:4].tolist()
        ['id', 'node', 'configuration', 'value']
        """
        from .sensitivity import sensitivity

        return sensitivity(self.spec, self.network, evidence, targets=targets, parameters=parameters,
                           summary=summary, codebook=codebook)

    @renamed(target="targets", positional=("targets", "threshold"))
    def tune(self, evidence: Mapping[str, Any], *, targets: tuple[str, str] | str | None = None,
             threshold: float | tuple[str, str] | str, parameters: Sequence[str] | None = None) -> pd.DataFrame:
        """Per parameter, the smallest change (and its CD distance) moving the posterior across a threshold.

        ``targets`` names one posterior, as for :meth:`sensitivity`; ``threshold`` is a probability
        or a rival ``(node, state)``. See :func:`bayescramp.sensitivity.tune`. ``target=`` (or the
        target and threshold by position) is the deprecated spelling.

        Examples
        --------
        >>> table = load_model().tune({"leg_cramps": "yes", "diuretic": "thiazide"},
        ...                           targets=("potassium_deficiency", "present"), threshold=0.5)
        >>> bool(table["achievable"].iloc[0])
        True
        """
        from .sensitivity import tune

        return tune(self.spec, self.network, evidence, targets=targets, threshold=threshold, parameters=parameters)

    def fit(self, data: pd.DataFrame | str | Path, *, codebook: Codebook | str | Path | None = None,
            prior_strength: str | float | Mapping = "ranges", max_iter: int = 500, tol: float = 1e-6,
            n_restarts: int = 3, rng: np.random.Generator | int | None = None, interval: float = 0.95,
            progress: bool = False):
        """Update the parameters from a cohort: Bayesian update on complete data, EM with blanks and hidden nodes.

        Each parameter's prior pseudo-counts come from its value and range (the Beta of the
        credible intervals), or ``prior_strength`` pseudo-observations (0: maximum likelihood).
        Nodes without a column are hidden; blank cells are no finding. See
        :func:`bayescramp.learning.fit` for the method, the objective EM maximises, the intervals
        and the identifiability checks.

        Parameters
        ----------
        data : DataFrame or path
            A table, or a ``.csv``/``.csv.gz``/``.parquet`` file (streamed in chunks).
        codebook : Codebook or path, optional
        prior_strength : "ranges", number, or mapping {node: number or "ranges"}
        max_iter, tol : int, float
            EM stops after ``max_iter`` iterations or when the objective's relative increase is below ``tol``.
        n_restarts : int
            EM runs from the model's values and from random starting points (``rng``); the best is kept.
        rng : numpy Generator or int seed, optional
        interval : float
            Probability inside each fitted parameter's interval (0.95: comparable with prior ranges).
        progress : bool
            Progress bar of EM iterations.

        Returns
        -------
        FitResult
            ``.model`` (the fitted Model), ``.report`` (per parameter: prior, fitted, interval, change in
            prior widths, expected count, status), ``.log_likelihood_trace``, ``.provenance`` and
            ``.save_overlay(path)``.

        Examples
        --------
        >>> import warnings
        >>> from bayescramp.learning import FitWarning
        >>> model = load_model()
        >>> cohort = model.simulate(2_000, rng=1, truth=True)     # every node observed: no EM needed
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", FitWarning)      # rare parent configurations no row holds
        ...     result = model.fit(cohort, rng=1)
        >>> result.report.set_index("id").loc["P(diuretic=thiazide|age_group=65_plus)", "status"]
        'fitted'
        """
        from .learning import fit

        return fit(self.spec, self.network, data, codebook=codebook, prior_strength=prior_strength, max_iter=max_iter,
                   tol=tol, n_restarts=n_restarts, rng=rng, interval=interval, progress=progress, model_type=Model)

    def parameters(self) -> pd.DataFrame:
        """Every free parameter, one row each.

        Columns ``id``, ``node``, ``parents``, ``state``, ``kind``, ``value``, ``low``, ``high``,
        ``source``, ``basis`` and ``note``.

        Examples
        --------
        >>> table = load_model().parameters()
        >>> {"id", "value", "low", "high", "source", "basis"} <= set(table.columns)
        True
        """
        return parameter_table(self.spec)

    def with_parameters(self, values: Mapping[str, float]) -> "Model":
        """A copy with parameters set by id; the rest of each table row co-varies proportionally."""
        return Model(with_parameters(self.spec, values))

    def to_pgmpy(self):
        """The model as a pgmpy ``DiscreteBayesianNetwork`` (passes ``check_model()``)."""
        from .reference import to_pgmpy

        return to_pgmpy(self.spec)

    def export(self, path: str | Path) -> Path:
        """Write the model as BIF (``.bif``) or XMLBIF (``.xmlbif``/``.xml``), atomically."""
        from .reference import write_network

        return write_network(self.spec, path)

    def __repr__(self) -> str:
        return (f"Model({self.spec.meta.get('name', 'model')!r}, {len(self.nodes)} nodes, "
                f"{len(parameters_by_id(self.spec))} parameters)")

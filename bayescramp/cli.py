"""The ``bayescramp`` command line: thin wrappers over the library.

Every subcommand has ``--help``. Errors are one sentence on stderr: exit code 2 for a
usage error, 1 for bad input; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ._errors import BayescrampError, InputError

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE = 0, 1, 2

#: subcommand name -> function(args) -> exit code; filled by the _add_* functions
_RUNNERS: dict[str, Callable[[argparse.Namespace], int]] = {}


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one sentence, exit code 2."""

    def error(self, message: str):  # noqa: D102 - argparse API
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"bayescramp: error: {message}\n")


class _UsageError(BayescrampError):
    """The command line asks for something it cannot do (exit code 2, like argparse's own errors)."""


def _count_type(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``least`` (a seed, a number of rows, draws, bins)."""
    def count(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < least:
            raise argparse.ArgumentTypeError(f"got {text!r}; expected a whole number of at least {least}")
        return value

    count.__name__ = "whole number"
    return count


_SEED = _count_type(0)
_AT_LEAST_ONE = _count_type(1)
_AT_LEAST_ZERO = _count_type(0)


def _priors_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--priors", nargs="+", metavar="FILE", default=None,
                        help="prior files, later ones overlaying earlier ones (default: the bundled "
                             "priors/default.toml); a bundled name such as older_adults works too, and a single "
                             ".bif/.xmlbif file loads that network")


def _evidence_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--evidence", nargs="*", default=[], metavar="NODE=STATE",
                        help="findings: node=state, node=a|b (one of a set), node=yes:0.8,no:0.2 (soft)")


def _load(args: argparse.Namespace):
    from .model import load_model

    return load_model(*(args.priors or []))


def parse_evidence(items: Sequence[str], model) -> dict:
    """``node=state``, ``node=state1|state2`` (a set) or ``node=state:0.8,other:0.2`` (soft).

    A node given twice with different findings is refused (never the last one silently).
    """
    from .evidence import case_evidence

    pairs: list = []
    for item in items:
        node, sep, value = item.partition("=")
        if not sep or not node or not value:
            raise InputError(f"--evidence {item!r}: expected node=state (or node=a|b for a set of states, "
                             "node=yes:0.8,no:0.2 for soft evidence).")
        model.states(node)
        if ":" in value:
            weights = {}
            for part in value.split(","):
                state, _, weight = part.partition(":")
                try:
                    weights[state] = float(weight)
                except ValueError:
                    raise InputError(f"--evidence {item!r}: weight {weight!r} of {state!r} is not a number; "
                                     "expected node=state:0.8,other:0.2.") from None
            pairs.append((node, weights))
        elif "|" in value:
            pairs.append((node, value.split("|")))
        else:
            pairs.append((node, value))
    return case_evidence(pairs, where="--evidence")


def _add_query(subparsers) -> None:
    parser = subparsers.add_parser(
        "query", help="posteriors for one person's evidence",
        description="Exact posterior of every deficiency (and other unobserved node) given one person's evidence, "
                    "sorted by posterior, with the prior beside it.",
        epilog="example: bayescramp query --evidence leg_cramps=yes diuretic=thiazide")
    _evidence_argument(parser)
    parser.add_argument("--targets", nargs="+", metavar="NODE", help="nodes to report (default: all unobserved)")
    _priors_argument(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _RUNNERS["query"] = _run_query


def _run_query(args: argparse.Namespace) -> int:
    model = _load(args)
    evidence = parse_evidence(args.evidence, model)
    result = model.posterior(evidence, targets=args.targets)
    frame = result.to_frame()
    if args.json:
        print(json.dumps({"evidence": evidence, "evidence_probability": result.evidence_probability,
                          "posterior": {node: result[node].to_dict() for node in result},
                          "prior": {node: model.marginals()[node].to_dict() for node in result}}, indent=2))
        return EXIT_OK
    info = model.network.info
    is_positive = np.array([info.positive_state(node) == state for node, state in zip(frame["node"], frame["state"])],
                           dtype=bool)
    positive = frame[frame["node"].isin(model.default_targets) & is_positive]
    others = frame[~frame["node"].isin(positive["node"])]
    table = (positive.sort_values("probability", ascending=False), others)
    print(f"evidence: {', '.join(args.evidence) or '(none)'}   P(evidence) = {result.evidence_probability:.4g}")
    print(f"{'node':<26}{'state':<18}{'posterior':>10}{'prior':>10}")
    for part in table:
        for row in part.itertuples():
            print(f"{row.node:<26}{row.state:<18}{row.probability:>10.4f}{row.prior:>10.4f}")
    return EXIT_OK


def _add_priors(subparsers) -> None:
    parser = subparsers.add_parser("priors", help="check prior files",
                                   description="Work with prior files.")
    actions = parser.add_subparsers(dest="priors_command", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    check = actions.add_parser(
        "check", help="validate prior files and compare marginals with published prevalence",
        description="Validate prior files (listing every problem with its file and key path); print the parameter "
                    "count, how many are expert judgement, and the prior predictive marginals beside the published "
                    "prevalence they should match.")
    check.add_argument("files", nargs="*", metavar="FILE", help="prior files (default: the bundled default)")
    check.add_argument("--parameters", action="store_true", help="also list every parameter with its id")
    _RUNNERS["priors"] = _run_priors_check


def _run_priors_check(args: argparse.Namespace) -> int:
    from .model import load_model

    model = load_model(*args.files)
    parameters = model.parameters()
    n_expert = int((parameters["basis"] == "expert").sum())
    files = ", ".join(Path(f).name for f in model.spec.files)
    print(f"{files}: valid. {len(model.nodes)} nodes, {len(parameters)} parameters "
          f"({n_expert} expert judgement, {len(parameters) - n_expert} evidence-based or derived).")
    marginals = model.marginals()
    published = model.spec.published_prevalence
    print(f"\n{'node':<26}{'state':<18}{'model':>8}{'published':>11}  {'range':<15}{'inside':<8}source")
    for node in model.nodes:
        if node in published:
            entry = published[node]
            value = float(marginals[node][entry.state])
            inside = _inside(value, entry.low, entry.high)
            print(f"{node:<26}{entry.state:<18}{value:>8.4f}{entry.value:>11.4f}  "
                  f"{f'[{entry.low:g}, {entry.high:g}]':<15}{inside:<8}{entry.source}")
        else:
            state = model.network.info.positive_state(node) or model.states(node)[-1]
            print(f"{node:<26}{state:<18}{float(marginals[node][state]):>8.4f}{'-':>11}  {'':<15}{'':<8}"
                  "(no published figure)")
    _print_conditional_checks(model)
    _print_silent_checks(model)
    if args.parameters:
        print()
        for row in parameters.itertuples():
            print(f"{row.id:<80} {row.value:>8.4g} [{row.low:g}, {row.high:g}] {row.basis:<9} {row.source}")
    return EXIT_OK


def _inside(value: float, low: float, high: float) -> str:
    return "yes" if low - 1e-12 <= value <= high + 1e-12 else "NO"


def _print_conditional_checks(model) -> None:
    """Stratum (conditional) marginals beside the published figures of ``[[published_conditional]]``."""
    from ._errors import EvidenceError

    entries = model.spec.published_conditional
    if not entries:
        return
    print(f"\n{'P(node = state | given)':<72}{'model':>8}{'published':>11}  {'range':<15}{'inside':<8}source")
    for entry in entries:
        given = ", ".join(f"{k}={v}" for k, v in entry.given.items())
        label = f"{entry.node}={entry.state} | {given}"
        try:
            value = float(model.posterior(entry.given, targets=[entry.node])[entry.node][entry.state])
        except EvidenceError:
            print(f"{label:<72}{'-':>8}{entry.value:>11.4f}  {'':<15}{'-':<8}(condition impossible under this model)")
            continue
        print(f"{label:<72}{value:>8.4f}{entry.value:>11.4f}  {f'[{entry.low:g}, {entry.high:g}]':<15}"
              f"{_inside(value, entry.low, entry.high):<8}{entry.source}")


def _print_silent_checks(model) -> None:
    """Joint check: the share of each deficiency that causes none of its symptoms, beside the published figure."""
    from .spec import silent_share

    entries = model.spec.published_asymptomatic
    if not entries:
        return
    print("\njoint check: share of people with the deficiency who have none of the symptoms it causes "
          "(product of 1 - link over its symptom links)")
    print(f"{'node':<26}{'model':>8}{'published':>11}  {'range':<15}{'inside':<8}source")
    for node, entry in entries.items():
        value = silent_share(model.spec, node)
        print(f"{node:<26}{value:>8.4f}{entry.value:>11.4f}  {f'[{entry.low:g}, {entry.high:g}]':<15}"
              f"{_inside(value, entry.low, entry.high):<8}{entry.source}")


def _add_export(subparsers) -> None:
    parser = subparsers.add_parser("export", help="write the model as BIF or XMLBIF",
                                   description="Write the model as BIF (.bif) or XMLBIF (.xmlbif, .xml), readable by "
                                               "pgmpy, pyAgrum, GeNIe and SamIam.")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="output file (.bif, .xmlbif or .xml)")
    _priors_argument(parser)
    _RUNNERS["export"] = _run_export


def _run_export(args: argparse.Namespace) -> int:
    path = _load(args).export(args.output)
    print(f"wrote {path}")
    return EXIT_OK


def _add_simulate(subparsers) -> None:
    parser = subparsers.add_parser("simulate", help="simulate a cohort from the model",
                                   description="Forward-sample a cohort: evidence columns (diuretic, symptoms, cramp "
                                               "timing for the default model), optionally with blanks and the hidden "
                                               "truth. Writes CSV (.csv, .csv.gz) or Parquet (.parquet).")
    parser.add_argument("-n", type=_AT_LEAST_ZERO, required=True, metavar="N", help="number of rows")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="output .csv, .csv.gz or .parquet")
    parser.add_argument("--seed", type=_SEED, default=None, metavar="S", help="random seed (reproducible output)")
    parser.add_argument("--missing", type=float, default=0.0, metavar="P",
                        help="probability that each evidence cell is blank (default 0)")
    parser.add_argument("--truth", action="store_true", help="also write the hidden deficiency columns")
    _priors_argument(parser)
    _RUNNERS["simulate"] = _run_simulate


def _run_simulate(args: argparse.Namespace) -> int:
    from .tabular import write_table

    cohort = _load(args).simulate(args.n, rng=args.seed, missing=args.missing, truth=args.truth)
    path = write_table(cohort, args.output)
    print(f"wrote {len(cohort)} rows to {path}")
    return EXIT_OK


def _add_explain(subparsers) -> None:
    parser = subparsers.add_parser(
        "explain", help="why each deficiency has its posterior, finding by finding",
        description="For one person's evidence: each target's prior and posterior, and per finding the posterior "
                    "without it (retraction), the change it made and its weight of evidence (natural-log likelihood "
                    "ratio; the weights enter in the model's node order and add up to posterior minus prior "
                    "log-odds), ranked by the size of the change; the data-conflict measure; and the most probable "
                    "joint explanation of the deficiencies.",
        epilog="example: bayescramp explain --evidence diuretic=thiazide cramp_timing=night muscle_weakness=yes")
    _evidence_argument(parser)
    parser.add_argument("--targets", nargs="+", metavar="NODE",
                        help="nodes to explain (default: the deficiencies not observed)")
    _priors_argument(parser)
    _RUNNERS["explain"] = _run_explain


def _run_explain(args: argparse.Namespace) -> int:
    model = _load(args)
    evidence = parse_evidence(args.evidence, model)
    result = model.posterior(evidence)
    table = model.explain(evidence, targets=args.targets)
    conflict = table["conflict"].iloc[0] if len(table) else 0.0
    verdict = "findings pull against each other" if conflict > 0 else "findings agree"
    print(f"evidence: {', '.join(args.evidence) or '(none)'}   P(evidence) = {result.evidence_probability:.4g}   "
          f"conflict = {conflict:+.3f} ({verdict})")
    over = [n for n in model.default_targets if n not in evidence]
    if over:
        best = model.most_probable(evidence, targets=over).iloc[0]
        named = [f"{n}={best[n]}" for n in over if best[n] != model.states(n)[0]]
        print(f"most probable explanation (P = {best['probability']:.4f}): {', '.join(named) or 'none'}"
              f"{'; others ' if named else ' of '}{'/'.join(sorted({model.states(n)[0] for n in over}))}")
    if table.empty:
        print("no findings to explain.")
        return EXIT_OK
    for (target, state), group in table.groupby(["target", "state"], sort=False):
        prior, posterior = group["prior"].iloc[0], group["posterior"].iloc[0]
        print(f"\n{target} = {state}: prior {prior:.4f} -> posterior {posterior:.4f}   (log-odds "
              f"{_log_odds(prior):+.3f} + weights {group['weight'].sum():+.3f} = {_log_odds(posterior):+.3f})")
        print(f"  {'finding':<36}{'without it':>11}{'change':>10}{'weight':>9}{'given rest':>12}")
        for row in sorted(group.itertuples(), key=lambda r: -abs(r.change)):
            print(f"  {row.finding + '=' + row.value:<36}{row.posterior_without:>11.4f}{row.change:>+10.4f}"
                  f"{row.weight:>+9.3f}{row.weight_given_rest:>+12.3f}")
    return EXIT_OK


def _log_odds(p: float) -> float:
    return math.log(p) - math.log1p(-p) if 0 < p < 1 else math.copysign(math.inf, p - 0.5)


_FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def _add_plot(subparsers) -> None:
    parser = subparsers.add_parser("plot", help="draw the network, a case, its evidence impact, or a cohort",
                                   description="Draw a picture to a .png, .pdf or .svg file.")
    kinds = parser.add_subparsers(dest="plot_kind", metavar="KIND", parser_class=_Parser)
    kinds.required = True

    def case_arguments(kind_parser, *, targets: bool = True) -> None:
        _evidence_argument(kind_parser)
        if targets:
            kind_parser.add_argument("--targets", nargs="+", metavar="NODE",
                                     help="nodes to show (default: the deficiencies)")
        kind_parser.add_argument("-o", "--output", required=True, metavar="FILE", help="output .png, .pdf or .svg")
        _priors_argument(kind_parser)

    network = kinds.add_parser("network", help="the network in layers, coloured by posterior",
                               description="The network drawn in layers (parents left of children), each node coloured "
                                           "by its posterior P(present / yes) given the evidence; findings in blue.",
                               epilog="example: bayescramp plot network --evidence leg_cramps=yes -o net.png")
    case_arguments(network, targets=False)
    case = kinds.add_parser("case", help="one case's posteriors beside their priors",
                            description="Each target's posterior beside its prior for one person's evidence.",
                            epilog="example: bayescramp plot case --evidence diuretic=thiazide cramp_timing=night "
                                   "-o case.png")
    case_arguments(case)
    case.add_argument("--interval", type=float, metavar="LEVEL",
                      help="also draw a credible interval of this level (e.g. 0.9) over the parameters' ranges")
    case.add_argument("--draws", type=_AT_LEAST_ONE, default=1000, metavar="N",
                      help="parameter draws for --interval (default 1000)")
    case.add_argument("--seed", type=_SEED, default=None, metavar="S", help="random seed for --interval")
    impact = kinds.add_parser("impact", help="one case's weights of evidence per finding",
                              description="Each finding's weight of evidence (log-odds) toward each target; findings "
                                          "enter in the model's node order, so prior log-odds plus the bars give the "
                                          "posterior log-odds.",
                              epilog="example: bayescramp plot impact --evidence diuretic=thiazide muscle_weakness=yes "
                                     "-o impact.png")
    case_arguments(impact)
    cohort = kinds.add_parser("cohort", help="distribution of each posterior across a scored table",
                              description="Histograms of the p_<node> columns of a scored table (bayescramp score "
                                          "output: .csv, .csv.gz or .parquet); rows whose status is not ok are left "
                                          "out.",
                              epilog="example: bayescramp plot cohort scored.csv -o cohort.png")
    cohort.add_argument("scored", metavar="SCORED", help="a scored table (.csv, .csv.gz or .parquet)")
    cohort.add_argument("--columns", nargs="+", metavar="COLUMN", help="p_ columns to draw (default: all)")
    cohort.add_argument("--bins", type=_AT_LEAST_ONE, default=20, metavar="N", help="histogram bins (default 20)")
    cohort.add_argument("--weights", metavar="COL",
                        help="survey weight column: bars count the population, the line is the weighted mean")
    cohort.add_argument("-o", "--output", required=True, metavar="FILE", help="output .png, .pdf or .svg")
    _RUNNERS["plot"] = _run_plot


def _figure_path(output: str) -> Path:
    path = Path(output)
    if path.suffix.lower() not in _FIGURE_SUFFIXES:
        raise InputError(f"-o {output}: unknown picture format {path.suffix!r}; expected a name ending in "
                         f"{', '.join(_FIGURE_SUFFIXES)}.")
    return path


def _save_figure(figure, output: str) -> Path:
    from .tabular import atomic_path

    path = _figure_path(output)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format=path.suffix.lower()[1:], dpi=110)
    return path


def _read_scored(path: str):
    from .survey import read_table

    return read_table(path)


def _run_plot(args: argparse.Namespace) -> int:
    from . import plotting

    _figure_path(args.output)
    if args.plot_kind == "cohort":
        figure = plotting.plot_cohort(_read_scored(args.scored), columns=args.columns, n_bins=args.bins,
                                      title=f"posterior across {Path(args.scored).name}", weights=args.weights)
    else:
        model = _load(args)
        evidence = parse_evidence(args.evidence, model)
        caption = ", ".join(args.evidence) or "no findings"
        if args.plot_kind == "network":
            figure = plotting.plot_network(model.network, probabilities=model.posterior(evidence),
                                           evidence={k: ",".join(v) if isinstance(v, list) else str(v)
                                                     for k, v in evidence.items()}, title=f"evidence: {caption}")
        elif args.plot_kind == "case":
            targets = args.targets or [t for t in model.default_targets if t not in evidence]
            posterior = model.posterior(evidence, targets=targets, interval=args.interval, n_draws=args.draws,
                                        rng=args.seed)
            prior = model.marginals()
            state = {t: model.network.info.positive_state(t) or model.states(t)[-1] for t in targets}
            bounds = {side: {t: float(posterior.intervals[t].loc[state[t], side]) for t in targets}
                      for side in ("lower", "upper")} if posterior.intervals is not None else {}
            note = f"\n{args.interval:.0%} credible intervals over the parameters" if bounds else ""
            figure = plotting.plot_case({t: posterior[t][state[t]] for t in targets},
                                        {t: prior[t][state[t]] for t in targets}, **bounds,
                                        title=f"evidence: {caption}{note}")
        else:
            table = model.explain(evidence, targets=args.targets)
            if table.empty:
                raise InputError("plot impact: --evidence has no findings; expected at least one node=state.")
            figure = plotting.plot_evidence_impact(table, title=f"evidence impact: {caption}")
    print(f"wrote {_save_figure(figure, args.output)}")
    return EXIT_OK


def _add_validate(subparsers) -> None:
    parser = subparsers.add_parser(
        "validate", help="simulate a cohort with hidden truth, score it, report discrimination and calibration",
        description="Simulate N people from the truth priors (default: the scoring priors), blank survey cells at "
                    "random, score them with the scoring priors and report per deficiency: AUROC, Brier score, "
                    "calibration intercept and slope (logistic recalibration, with standard errors), expected "
                    "calibration error and reliability curves. With the same priors the posteriors are calibrated by "
                    "construction (the report shows sampling error only); with other truth priors it shows the cost "
                    "of scoring a population with the wrong priors.",
        epilog="example: bayescramp validate --truth-priors default older_adults -n 50000 --seed 1 -o report")
    _priors_argument(parser)
    parser.add_argument("--truth-priors", nargs="+", metavar="FILE", default=None,
                        help="prior files the cohort is simulated from (default: the scoring priors); overlays need "
                             "their base, e.g. --truth-priors default older_adults")
    parser.add_argument("-n", type=_AT_LEAST_ONE, required=True, metavar="N", help="people to simulate")
    parser.add_argument("--seed", type=_SEED, default=None, metavar="S", help="random seed (reproducible report)")
    parser.add_argument("--missing", type=float, default=0.0, metavar="P",
                        help="probability that each survey cell is blank (default 0)")
    parser.add_argument("--bins", type=_AT_LEAST_ONE, default=10, metavar="N", help="calibration bins (default 10)")
    parser.add_argument("--binning", choices=("equal_mass", "equal_width"), default="equal_mass",
                        help="bins holding equal numbers of people (default) or of equal width")
    parser.add_argument("-o", "--output", metavar="DIR",
                        help="write metrics.csv, reliability.csv, summary.md and reliability.png into DIR")
    _RUNNERS["validate"] = _run_validate


def _run_validate(args: argparse.Namespace) -> int:
    from .model import load_model
    from .validation import validate, write_report

    model = _load(args)
    truth = load_model(*args.truth_priors) if args.truth_priors else model
    report = validate(model, truth_priors=truth, n=args.n, rng=args.seed, missing=args.missing, n_bins=args.bins,
                      binning=args.binning)
    print(report.summary(), end="")
    if args.output:
        from .plotting import plot_reliability

        figure = plot_reliability(report.reliability, metrics=report.metrics,
                                  title=f"calibration: truth {' + '.join(report.settings['truth_priors'])}, scored "
                                        f"with {' + '.join(report.settings['priors'])}")
        print(f"\nwrote {write_report(report, args.output, figure=figure)}")
    return EXIT_OK


def _add_sensitivity(subparsers) -> None:
    parser = subparsers.add_parser(
        "sensitivity", help="how much one posterior depends on each parameter (tornado)",
        description="Sensitivity of P(target | evidence) to every parameter, in closed form: for each parameter the "
                    "posterior with it at the low and high end of its range (the swing), and the sensitivity value "
                    "|df/dtheta|. Parameters are listed by swing, largest first.",
        epilog="example: bayescramp sensitivity --evidence leg_cramps=yes diuretic=thiazide "
               "--targets potassium_deficiency=present --top 10 --plot tornado.png")
    _evidence_argument(parser)
    parser.add_argument("--targets", "--target", dest="target", metavar="NODE=STATE",
                        help="the one posterior studied (default: the model's sensitivity target, "
                             "meta.sensitivity_target of its priors file); --target is the old spelling")
    parser.add_argument("--top", type=_AT_LEAST_ONE, default=15, metavar="K", help="parameters listed (default 15)")
    parser.add_argument("--plot", metavar="FILE.png", help="also write a tornado diagram of the top K (PNG, SVG, PDF)")
    parser.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    _priors_argument(parser)
    _RUNNERS["sensitivity"] = _run_sensitivity


def _run_sensitivity(args: argparse.Namespace) -> int:
    if args.plot and Path(args.plot).suffix.lower() not in _FIGURE_SUFFIXES:
        raise InputError(f"--plot {args.plot}: unknown picture format {Path(args.plot).suffix!r}; expected a name "
                         f"ending in {', '.join(_FIGURE_SUFFIXES)}.")
    model = _load(args)
    evidence = parse_evidence(args.evidence, model)
    args.target = args.target or "=".join(model.network.info.default_sensitivity_target())
    table = model.sensitivity(evidence, targets=args.target)
    shown = table.head(args.top)
    if args.plot:
        from .plotting import plot_tornado

        title = f"P({args.target} | {', '.join(args.evidence) or 'no findings'})"
        figure = plot_tornado(table, top=args.top, title=title)
        path = _save_figure(figure, args.plot)
    if args.json:
        print(json.dumps({"evidence": evidence, "target": args.target, "posterior": float(table["posterior"].iloc[0]),
                          "parameters": shown.to_dict(orient="records")}, indent=2))
    else:
        print(f"P({args.target} | {', '.join(args.evidence) or 'no findings'}) = {table['posterior'].iloc[0]:.4f}; "
              f"top {len(shown)} of {len(table)} parameters by swing over their ranges")
        print(f"{'parameter':<84}{'value':>8}{'range':>18}{'at low':>9}{'at high':>9}{'swing':>8}{'|df/dθ|':>9}")
        for row in shown.itertuples():
            print(f"{row.id:<84}{row.value:>8.4g}{f'[{row.low:g}, {row.high:g}]':>18}{row.posterior_at_low:>9.4f}"
                  f"{row.posterior_at_high:>9.4f}{row.swing:>8.4f}{row.sensitivity_value:>9.4f}")
    if args.plot:
        print(f"wrote {path}", file=sys.stderr if args.json else sys.stdout)
    return EXIT_OK


def _add_score(subparsers) -> None:
    parser = subparsers.add_parser(
        "score", help="score a survey file (CSV or Parquet): one row of posteriors per person",
        description="Exact posteriors for every row of a survey file, streamed in chunks (memory does not grow with "
                    "the file). CSV (.csv, .csv.gz) or Parquet (.parquet) in and out, by extension. The output is "
                    "written beside OUTPUT and renamed only on success: bad input or an interruption leaves nothing "
                    "at OUTPUT.",
        epilog="examples: bayescramp score --example -o example_scores.csv ; "
               "bayescramp score survey.csv --codebook codebook.toml -o scores.parquet")
    parser.add_argument("input", nargs="?", metavar="INPUT",
                        help="survey file: .csv, .csv.gz or .parquet (with --engine dask also a glob of CSV parts "
                             "or a folder of Parquet parts)")
    parser.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="output .csv, .csv.gz or .parquet")
    parser.add_argument("--example", action="store_true",
                        help="score the bundled example survey with its bundled codebook (INPUT not needed)")
    _priors_argument(parser)
    parser.add_argument("--codebook", metavar="FILE",
                        help="TOML codebook mapping the survey's columns and codes to nodes and states, or a "
                             "bundled one by name: nhanes, brfss, example (default: columns named like nodes, "
                             "holding state names or yes/no)")
    parser.add_argument("--targets", nargs="+", metavar="NODE", help="nodes to report (default: the deficiencies)")
    parser.add_argument("--id-column", nargs="+", dest="id_columns", metavar="COL",
                        help="id column(s) copied to the output (default: the codebook's)")
    parser.add_argument("--keep-columns", nargs="+", metavar="COL",
                        help="other columns copied to the output, e.g. survey weights (never used in scoring)")
    parser.add_argument("--chunk-size", type=_AT_LEAST_ONE, default=None, metavar="N",
                        help="rows read, scored and written at a time (default 100000)")
    parser.add_argument("--on-invalid", choices=("error", "flag"), default="error",
                        help="error (default): a cell that cannot be read stops the run and nothing is written; "
                             "flag: write every row, bad rows get status 'invalid: <reason>' and no posterior")
    parser.add_argument("--unmatched", choices=("warn", "error", "ignore"), default="warn",
                        help="columns that look like evidence but are not used (a near spelling of a node or codebook "
                             "column, e.g. 'leg cramp', 'fatigue_2'): warn (default: a line in the summary), error "
                             "(refuse the file) or ignore. Names match ignoring case and surrounding spaces")
    parser.add_argument("--engine", choices=("local", "dask"), default="local",
                        help="local (default) or dask (a Dask cluster; needs bayescramp[dask])")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="with --engine dask: address of a running Dask scheduler (default: a local cluster)")
    parser.add_argument("--interval", type=float, metavar="P",
                        help="also write p_<node>_lower and p_<node>_upper: the central P credible bounds (e.g. 0.9) "
                             "over joint draws of the parameters from their ranges")
    parser.add_argument("--draws", type=_AT_LEAST_ONE, default=1000, metavar="N",
                        help="parameter draws for --interval (default 1000)")
    parser.add_argument("--seed", type=_SEED, default=None, metavar="S", help="seed of the --interval draws")
    parser.add_argument("--explain", action="store_true",
                        help="also write top_finding_<node> per target: the finding that raised that posterior most "
                             "(retracting it lowers the posterior most)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    _RUNNERS["score"] = _run_score


def _score_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of score_file from the command line (other options add theirs here)."""
    from .survey import DEFAULT_CHUNK_SIZE, example_paths

    if args.example and args.input:
        raise _UsageError(f"score: got INPUT {args.input!r} and --example; expected one of them.")
    if not args.example and not args.input:
        raise _UsageError("score: no INPUT given; expected a survey file (or --example for the bundled example).")
    if args.scheduler and args.engine != "dask":
        raise _UsageError("score: --scheduler was given without --engine dask; expected both (or neither).")
    if args.engine == "dask" and (args.interval is not None or args.explain):
        raise _UsageError("score: --interval and --explain work with --engine local only; expected --engine local "
                          "(or drop them for a Dask run).")
    survey, example_codebook = example_paths()
    codebook = args.codebook or (example_codebook if args.example else None)
    return {"path": survey if args.example else args.input, "output": args.output, "model": _load(args),
            "codebook": codebook, "targets": args.targets, "id_columns": args.id_columns,
            "keep_columns": args.keep_columns,
            "chunk_size": DEFAULT_CHUNK_SIZE if args.chunk_size is None else args.chunk_size,
            "on_invalid": args.on_invalid, "progress": not args.quiet, "unmatched": args.unmatched,
            **({"interval": args.interval, "n_draws": args.draws, "rng": args.seed, "explain": args.explain}
               if args.engine == "local" else {})}


def _run_score(args: argparse.Namespace) -> int:
    import warnings

    from ._errors import UnmatchedColumnsWarning

    options = _score_options(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnmatchedColumnsWarning)  # the summary lists them
        if args.engine == "dask":
            try:
                from .distributed import score_dask_file
            except ImportError as error:
                raise InputError(f"--engine dask: {error}; expected dask installed "
                                 "(python -m pip install \"bayescramp[dask]\").") from None

            summary = score_dask_file(scheduler=args.scheduler, **options)
        else:
            from .survey import score_file

            summary = score_file(**options)
    print(summary)
    return EXIT_OK


def _add_prevalence(subparsers) -> None:
    from .prevalence import LONELY_PSU_RULES

    parser = subparsers.add_parser(
        "prevalence", help="population prevalence from a complex survey (weights, strata, PSUs), overall and by group",
        description="Expected population prevalence of each target: the weighted mean of the posteriors over the "
                    "rows scored ok, with a design-based standard error (Taylor linearisation, PSUs with replacement "
                    "within strata, as R's survey package), a t confidence interval (df = PSUs - strata), the design "
                    "effect and the unweighted n, overall and per subgroup. INPUT is a scored table (it has p_ "
                    "columns and status: used as is) or a survey file (scored first with --priors and --codebook). "
                    "Design columns default to the codebook's [design] table.",
        epilog="examples: bayescramp prevalence bayescramp/data/example_survey.csv --codebook "
               "bayescramp/data/example_codebook.toml --weights WTINT2YR --strata SDMVSTRA --psu SDMVPSU --by BCQ010 "
               "-o prevalence.csv --plot forest.png ; bayescramp prevalence scores.csv --weights WTINT2YR --by sex "
               "age_group \"sex*age_group\"")
    parser.add_argument("input", metavar="SCORES_OR_SURVEY",
                        help="a scored table (bayescramp score output) or a survey file: .csv, .csv.gz or .parquet")
    parser.add_argument("--weights", metavar="COL", help="sampling weight column (default: equal weights)")
    parser.add_argument("--strata", metavar="COL", help="stratum column (default: one stratum)")
    parser.add_argument("--psu", metavar="COL",
                        help="primary sampling unit column, nested in strata (default: every row its own PSU)")
    parser.add_argument("--fpc", metavar="COL",
                        help="finite population correction: population PSU count per stratum, or a sampling fraction "
                             "<= 1 (default: none, sampling with replacement)")
    parser.add_argument("--by", nargs="+", default=[], metavar="COL",
                        help="subgroups: each COL gives its levels; A*B gives the cross of A and B (the overall "
                             "population always comes first)")
    parser.add_argument("--targets", nargs="+", metavar="NODE",
                        help="nodes to report (default: every p_ column, or the deficiencies when scoring)")
    parser.add_argument("--level", type=float, default=0.95, metavar="P",
                        help="confidence level of the interval (default 0.95)")
    parser.add_argument("--lonely-psu", choices=LONELY_PSU_RULES, default="fail",
                        help="a stratum with one PSU: fail (default, an error naming it), certainty or remove (no "
                             "variance), adjust (centred at the grand mean), average (other strata scaled up)")
    _priors_argument(parser)
    parser.add_argument("--codebook", metavar="FILE",
                        help="codebook of the survey file; its [design] table gives the default design columns")
    parser.add_argument("--on-invalid", choices=("error", "flag"), default="error",
                        help="when scoring: error (default) stops on a cell that cannot be read; flag counts such "
                             "rows as excluded")
    parser.add_argument("--interval", type=float, metavar="P",
                        help="also give se_parameter, se_total and a P interval (lower_total, upper_total) that adds "
                             "the prevalence's variance across parameter draws (needs a survey file, not scores)")
    parser.add_argument("--draws", type=int, default=200, metavar="N", help="parameter draws for --interval "
                                                                            "(default 200)")
    parser.add_argument("--seed", type=int, default=None, metavar="S", help="seed of the --interval draws")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the table as .csv, .csv.gz or .parquet")
    parser.add_argument("--plot", metavar="FILE", help="also draw a forest plot (.png, .pdf or .svg)")
    _RUNNERS["prevalence"] = _run_prevalence


def _run_prevalence(args: argparse.Namespace) -> int:
    import pandas as pd

    from .prevalence import prevalence
    from .tabular import table_format, write_table

    if args.output:
        table_format(args.output)
    if args.plot:
        _figure_path(args.plot)
    if args.draws < 1:
        raise InputError(f"prevalence: --draws got {args.draws}; expected a positive number of draws.")
    path = Path(args.input)
    kind = table_format(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; expected a scored table or a survey file (.csv, .csv.gz or "
                         ".parquet).")
    # text as written: codes keep their spelling (01, .), blanks are missing
    frame = pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path, dtype=str)
    first_row = 1 if kind == "parquet" else 2
    scored = "status" in frame.columns and any(str(c).startswith("p_") for c in frame.columns)
    design = {"weights": args.weights, "strata": args.strata, "psu": args.psu, "fpc": args.fpc, "by": args.by or None,
              "level": args.level, "lonely_psu": args.lonely_psu, "source": path.name,
              "row_label": lambda position: f"row {position + first_row}"}
    if scored:
        if args.interval is not None:
            raise InputError(f"{path}: is a scored table; --interval needs the survey file the scores came from (its "
                             "answers are scored under every parameter draw); expected a survey file or no --interval.")
        from .codebook import resolve_codebook

        table = prevalence(frame, targets=args.targets, codebook=resolve_codebook(args.codebook), **design)
    else:
        table = _load(args).prevalence(frame, codebook=args.codebook, targets=args.targets,
                                       on_invalid=args.on_invalid, interval=args.interval, n_draws=args.draws,
                                       rng=args.seed, **design)
    _print_prevalence(table, path.name, scored)
    if args.output:
        print(f"wrote {write_table(table, args.output)}")
    if args.plot:
        from .plotting import plot_prevalence

        print(f"wrote {_save_figure(plot_prevalence(table, title=f'prevalence in {path.name}'), args.plot)}")
    return EXIT_OK


def _print_prevalence(table, name: str, scored: bool) -> None:
    """The table as people read it: per target, each subgroup's prevalence in percent with its interval."""
    import pandas as pd

    attrs = table.attrs
    statuses = ", ".join(f"{n:,} {status}" for status, n in attrs["statuses"].items())
    design = ", ".join(f"{key} {value}" for key, value in attrs["design"].items() if value is not None) or "none"
    print(f"{name}: {attrs['n_rows']:,} rows ({statuses}){'' if scored else ', scored'}; design: {design}; "
          f"{attrs['n_strata']} strata, {attrs['n_psu']:,} PSUs, df {int(table['df'].iloc[0])}; lonely PSU rule "
          f"{attrs['lonely_psu']} ({attrs['lonely_strata']} lonely strata)")
    by_columns = [c for c in table.columns[2:table.columns.get_loc("estimate")]]
    total = "lower_total" in table.columns
    header = f"{'subgroup':<34}{'prevalence':>11}  {attrs['level']:.0%} CI{'':<12}{'SE':>8}{'deff':>7}{'n':>9}"
    for target, rows in table.groupby("target", sort=False):
        print(f"\n{target}")
        print(header + (f"  {'with parameters':<18}" if total else ""))
        for row in rows.itertuples(index=False):
            values = row._asdict()
            parts = [c for c in by_columns if c in row.group.split("*")]
            label = ", ".join(f"{c}={'(missing)' if pd.isna(values[c]) else values[c]}" for c in parts) or "all"
            deff = "-" if pd.isna(row.deff) else f"{row.deff:.2f}"
            line = (f"{label[:33]:<34}{row.estimate:>10.2%}  {row.lower:>7.2%} to {row.upper:<7.2%}"
                    f"{row.se:>9.2%}{deff:>7}{row.n:>9,}")
            if total:
                line += f"  {row.lower_total:>6.2%} to {row.upper_total:.2%}"
            print(line)




#: Signals that stop a run the way Ctrl-C does: the stack unwinds, temporaries are removed,
#: nothing is left at the output, and the exit code is 128 + the signal number.
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM")


class _Stopped(KeyboardInterrupt):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop(signum, frame) -> None:
    import signal

    for name in STOP_SIGNALS:  # the clean-up that follows runs undisturbed by a second signal
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    raise _Stopped(signum)


@contextmanager
def _stop_signals_unwind() -> Iterator[None]:
    """Turn the catchable stop signals into an exception while the command runs (main thread only)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for name in STOP_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, _stop)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _add_clean(subparsers) -> None:
    parser = subparsers.add_parser(
        "clean", help="remove temporary files left by runs that were killed outright",
        description="Outputs are written to a hidden temporary beside OUTPUT (.NAME.bayescramp-PID-HOST-XXXX.partial) "
                    "and renamed only when complete. Ctrl-C and the signals TERM, HUP, QUIT, USR1, USR2 and ALRM "
                    "remove it; a run killed outright (kill -9, a power cut) cannot, and leaves it behind. The next "
                    "run writing in the same folder removes such leftovers; this command does it now. Only "
                    "temporaries of processes no longer running on this host are removed; those of running "
                    "processes or of other hosts (a shared file system) are listed and kept.",
        epilog="example: bayescramp clean results/")
    parser.add_argument("folder", nargs="?", default=".", metavar="DIR",
                        help="the folder of the outputs (default: the current folder)")
    _RUNNERS["clean"] = _run_clean


def _run_clean(args: argparse.Namespace) -> int:
    from .tabular import remove_stale_temporaries, stale_temporaries

    folder = Path(args.folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder; expected the folder of a bayescramp output.")
    removed = remove_stale_temporaries(folder)
    kept = stale_temporaries(folder)[1]
    print(f"removed {len(removed)} temporary file(s) of stopped runs in {folder}"
          + (": " + ", ".join(p.name for p in removed) if removed else ""))
    if kept:
        print(f"kept {len(kept)} of running processes or other hosts: " + ", ".join(p.name for p in kept))
    return EXIT_OK


def _add_fit(subparsers) -> None:
    parser = subparsers.add_parser(
        "fit", help="learn the parameters from a cohort file; write them as a prior overlay",
        description="Update every free parameter from a cohort (CSV or Parquet, streamed): a Bayesian update on "
                    "complete data, EM when cells are blank or nodes have no column (hidden). Each parameter's "
                    "prior pseudo-counts come from its value and range (or --prior-strength). Writes an overlay "
                    "(TOML) with the fitted values, their intervals, basis = \"fitted\" and the data's provenance; "
                    "load it with load_model(PRIORS..., OUTPUT). Prints the largest changes in units of the prior's "
                    "width and warns about parameters no row informs or the data cannot identify.",
        epilog="example: bayescramp fit cohort.csv -o learned.toml --seed 1")
    parser.add_argument("data", metavar="DATA", help="cohort file: .csv, .csv.gz or .parquet")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.toml", help="the overlay to write (.toml)")
    _priors_argument(parser)
    parser.add_argument("--codebook", metavar="FILE",
                        help="TOML codebook mapping the file's columns and codes to nodes and states")
    parser.add_argument("--max-iter", type=int, default=500, metavar="N", help="EM iterations per restart (500)")
    parser.add_argument("--tol", type=float, default=1e-6, metavar="X",
                        help="stop when the objective's relative increase is below X (default 1e-6)")
    parser.add_argument("--restarts", type=int, default=3, metavar="K",
                        help="EM runs: from the priors, then from random starting points (default 3)")
    parser.add_argument("--seed", type=int, default=None, metavar="S", help="seed of the random restarts")
    parser.add_argument("--prior-strength", default="ranges", metavar="ranges|N",
                        help="pseudo-observations per parameter: 'ranges' (from each value and range, the default) "
                             "or a number N (0: maximum likelihood)")
    parser.add_argument("--top", type=int, default=10, metavar="K", help="largest changes listed (default 10)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    _RUNNERS["fit"] = _run_fit


def _run_fit(args: argparse.Namespace) -> int:
    import time
    import warnings

    if not args.output.lower().endswith(".toml"):
        raise InputError(f"-o {args.output}: an overlay is a TOML file; expected a name ending in .toml.")
    if args.top < 0:
        raise InputError(f"--top: got {args.top}; expected a number of parameters >= 0.")
    strength = args.prior_strength
    if strength != "ranges":
        try:
            strength = float(strength)
        except ValueError:
            raise InputError(f"--prior-strength: got {strength!r}; expected 'ranges' or a number of "
                             "pseudo-observations >= 0.") from None
    model = _load(args)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model.fit(args.data, codebook=args.codebook, prior_strength=strength, max_iter=args.max_iter,
                           tol=args.tol, n_restarts=args.restarts, rng=args.seed, progress=not args.quiet)
    path = result.save_overlay(args.output)
    seconds = time.perf_counter() - started
    for warning in caught:
        print(f"bayescramp: warning: {warning.message}", file=sys.stderr)
    print(f"{result.summary()} {seconds:.1f} s; wrote {path}")
    shown = result.largest_changes(args.top)
    if len(shown):
        print("\nlargest changes (in units of the prior's width; '-' for an empty prior range):")
        print(f"{'parameter':<84}{'prior':>9}{'fitted':>9}{'interval':>22}{'change':>8}{'count':>11}  status")
        for row in shown.itertuples():
            change = f"{row.change_in_widths:+.2f}" if row.change_in_widths == row.change_in_widths else "-"
            interval = f"[{row.lower:.4g}, {row.upper:.4g}]"
            print(f"{row.id:<84}{row.prior:>9.4g}{row.fitted:>9.4g}{interval:>22}{change:>8}"
                  f"{row.expected_count:>11,.0f}  {row.status}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = _Parser(prog="bayescramp",
                     description="Exact posteriors of nutrient deficiencies behind muscle cramps, for one person or "
                                 "a whole survey. Not a diagnostic device.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for add in (_add_query, _add_priors, _add_export, _add_simulate, _add_explain, _add_plot, _add_validate,
                _add_sensitivity, _add_score, _add_prevalence, _add_fit, _add_clean):
        add(subparsers)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code.

    Examples
    --------
    >>> main(["priors", "check", "--help"]) == 0  # doctest: +ELLIPSIS
    usage: bayescramp priors check ...
    True
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        with _stop_signals_unwind():
            return _RUNNERS[args.command](args)
    except BayescrampError as error:
        for problem in error.problems:
            print(f"bayescramp: error: {problem}", file=sys.stderr)
        return EXIT_USAGE if isinstance(error, _UsageError) else EXIT_BAD_INPUT
    except KeyboardInterrupt as error:
        import signal

        number = getattr(error, "signum", signal.SIGINT)
        print(f"bayescramp: stopped by {signal.Signals(number).name}; no output was written (temporary files "
              "removed).", file=sys.stderr)
        return 128 + number
    except BrokenPipeError:
        return EXIT_OK
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        print(f"bayescramp: error: {where}{error.strerror or error}; expected a readable input and a writable "
              "output location.", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as error:  # a bug: one sentence, unless BAYESCRAMP_DEBUG asks for the traceback
        if os.environ.get("BAYESCRAMP_DEBUG"):
            raise
        print(f"bayescramp: internal error: {type(error).__name__}: {error}. This is a bug in bayescramp; please "
              "report it with the command you ran (set BAYESCRAMP_DEBUG=1 to see the traceback).", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    raise SystemExit(main())

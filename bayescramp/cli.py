"""The ``bayescramp`` command line: thin wrappers over the library.

Every subcommand has ``--help``. Errors are one sentence on stderr: exit code 2 for a
usage error, 1 for bad input; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Callable, Sequence

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


def _priors_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--priors", nargs="+", metavar="FILE", default=None,
                        help="prior files, later ones overlaying earlier ones (default: the bundled "
                             "priors/default.toml); a bundled name such as older_adults works too, and a single "
                             ".bif/.xmlbif file loads that network")


def _load(args: argparse.Namespace):
    from .model import load_model

    return load_model(*(args.priors or []))


def parse_evidence(items: Sequence[str], model) -> dict:
    """``node=state``, ``node=state1|state2`` (a set) or ``node=state:0.8,other:0.2`` (soft)."""
    evidence: dict = {}
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
            evidence[node] = weights
        elif "|" in value:
            evidence[node] = value.split("|")
        else:
            evidence[node] = value
    return evidence


def _add_query(subparsers) -> None:
    parser = subparsers.add_parser(
        "query", help="posteriors for one person's evidence",
        description="Exact posterior of every deficiency (and other unobserved node) given one person's evidence, "
                    "sorted by posterior, with the prior beside it.",
        epilog="example: bayescramp query --evidence leg_cramps=yes diuretic=thiazide")
    parser.add_argument("--evidence", nargs="*", default=[], metavar="NODE=STATE",
                        help="findings: node=state, node=a|b (one of a set), node=yes:0.8,no:0.2 (soft)")
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
    positive = frame[frame["state"].isin(["present", "yes"])]
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
            inside = "yes" if entry.low - 1e-12 <= value <= entry.high + 1e-12 else "NO"
            print(f"{node:<26}{entry.state:<18}{value:>8.4f}{entry.value:>11.4f}  "
                  f"{f'[{entry.low:g}, {entry.high:g}]':<15}{inside:<8}{entry.source}")
        else:
            positive = [s for s in ("present", "yes") if s in model.states(node)]
            state = positive[0] if positive else model.states(node)[-1]
            print(f"{node:<26}{state:<18}{float(marginals[node][state]):>8.4f}{'-':>11}  {'':<15}{'':<8}"
                  "(no published figure)")
    if args.parameters:
        print()
        for row in parameters.itertuples():
            print(f"{row.id:<80} {row.value:>8.4g} [{row.low:g}, {row.high:g}] {row.basis:<9} {row.source}")
    return EXIT_OK


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
    parser.add_argument("-n", type=int, required=True, metavar="N", help="number of rows")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="output .csv, .csv.gz or .parquet")
    parser.add_argument("--seed", type=int, default=None, metavar="S", help="random seed (reproducible output)")
    parser.add_argument("--missing", type=float, default=0.0, metavar="P",
                        help="probability that each evidence cell is blank (default 0)")
    parser.add_argument("--truth", action="store_true", help="also write the hidden deficiency columns")
    _priors_argument(parser)
    _RUNNERS["simulate"] = _run_simulate


def _run_simulate(args: argparse.Namespace) -> int:
    from .tabular import write_table

    if args.n < 0:
        raise InputError(f"-n: got {args.n}; expected a non-negative number of rows.")
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
    parser.add_argument("--evidence", nargs="*", default=[], metavar="NODE=STATE",
                        help="findings: node=state, node=a|b (one of a set), node=yes:0.8,no:0.2 (soft)")
    parser.add_argument("--targets", nargs="+", metavar="NODE",
                        help="nodes to explain (default: the deficiencies not observed)")
    _priors_argument(parser)
    _RUNNERS["explain"] = _run_explain


def _run_explain(args: argparse.Namespace) -> int:
    model = _load(args)
    evidence = parse_evidence(args.evidence, model)
    result = model.posterior(evidence)
    table = model.explain(evidence, target=args.targets)
    conflict = table["conflict"].iloc[0] if len(table) else 0.0
    verdict = "findings pull against each other" if conflict > 0 else "findings agree"
    print(f"evidence: {', '.join(args.evidence) or '(none)'}   P(evidence) = {result.evidence_probability:.4g}   "
          f"conflict = {conflict:+.3f} ({verdict})")
    over = [n for n in model.default_targets if n not in evidence]
    if over:
        best = model.most_probable(evidence, over=over).iloc[0]
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = _Parser(prog="bayescramp",
                     description="Exact posteriors of nutrient deficiencies behind muscle cramps, for one person or "
                                 "a whole survey. Not a diagnostic device.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for add in (_add_query, _add_priors, _add_export, _add_simulate, _add_explain):
        add(subparsers)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code.

    Examples
    --------
    >>> main(["query", "--evidence", "leg_cramps=yes", "--targets", "magnesium_deficiency", "--json"]) == 0
    True
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        return _RUNNERS[args.command](args)
    except BayescrampError as error:
        for problem in error.problems:
            print(f"bayescramp: error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("bayescramp: interrupted; no output was written.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())

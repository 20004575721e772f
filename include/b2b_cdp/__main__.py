"""Command line: python -m b2b_cdp {demo,validate,explain,explain-segment} ..."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m b2b_cdp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the whole pipeline on a scenario through Airflow")
    demo.add_argument("--scenario", type=Path, default=None, help="scenario file (default: Bodea)")
    demo.add_argument("--report", type=Path, default=None, help="where to write report.json")
    validate = commands.add_parser("validate", help="validate the configuration and run its guardrails")
    validate.add_argument("--config", type=Path, default=None)
    explain = commands.add_parser(
        "explain", help="explain a stitched person (by email) or account",
        description="Explain the person(s) an email identifies, or an account given by its account id, "
                    "any of its keys, its MDM id or its name (any case). Exit status: 0 explained, "
                    "1 not found, 2 usage or configuration error, 3 an account's roll-ups disagree "
                    "with its deals.")
    wanted = explain.add_mutually_exclusive_group(required=True)
    wanted.add_argument("--email", help="an email address (trimmed, any case)")
    wanted.add_argument("--account", help="account id, source key, MDM id or name")
    _reading_options(explain, "which sandbox (default: the configuration's first)")
    explain_segment = commands.add_parser(
        "explain-segment", help="explain a segment's verdict for the person(s) an email identifies "
                                "(or, for an account audience, for an account)",
        description="Walk the segment's conditions for each person the email identifies (for an account "
                    "audience, for each account the reference names): each condition with its evidence and "
                    "whether it holds at the evaluation time, the verdict (in or out) and whether the stored "
                    "membership agrees. Exit status: 0 explained, 1 segment, email or account not found, 2 "
                    "usage or configuration error, 3 the stored membership of an evaluation at that time "
                    "disagrees with the verdict.")
    explain_segment.add_argument("--segment", required=True, help="a segment id of the configuration")
    wanted = explain_segment.add_mutually_exclusive_group(required=True)
    wanted.add_argument("--email", help="an email address (trimmed, any case): a person audience's verdict")
    wanted.add_argument("--account", help="account id, source key, MDM id or name: an account audience's verdict")
    explain_segment.add_argument("--as-of", default=None, metavar="ISO",
                                 help="evaluation time (default: the segment's latest evaluation, else now)")
    _reading_options(explain_segment, "the segment's sandbox (default: the one the segment declares)")
    args = parser.parse_args(argv)

    if args.command == "demo":
        from b2b_cdp.demo import DEFAULT_SCENARIO, run_demo

        run_demo(args.scenario or DEFAULT_SCENARIO, args.report)
        return 0
    if args.command == "explain":
        return _explain(args)
    if args.command == "explain-segment":
        from b2b_cdp.explain_segment import run_explain_segment

        return run_explain_segment(segment=args.segment, email=args.email, account=args.account, as_of=args.as_of,
                                   sandbox=args.sandbox, json_output=args.json, scenario=args.scenario,
                                   config=args.config)

    from b2b_cdp import guardrails
    from b2b_cdp.config import ConfigError, load_config

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    outcomes = guardrails.run_config_checkpoints(cfg)
    for outcome in outcomes.values():
        print(f"{outcome.name}: {'passed' if outcome.success else 'FAILED'}")
        for violation in outcome.violations:
            print(f"  {violation}")
    return 0 if all(o.success for o in outcomes.values()) else 1


def _reading_options(command: argparse.ArgumentParser, sandbox_help: str) -> None:
    """The options of the commands that read the warehouse: sandbox, output, where the warehouse is."""
    command.add_argument("--sandbox", default=None, metavar="PLATFORM_INSTANCE/NAME", help=sandbox_help)
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.add_argument("--scenario", type=Path, default=None,
                         help="without a configured warehouse, read the demo state of this scenario "
                              "(default: Bodea)")
    command.add_argument("--config", type=Path, default=None)


def _explain(args: argparse.Namespace) -> int:
    from b2b_cdp.explain import run_explain

    return run_explain(email=args.email, account=args.account, sandbox=args.sandbox, json_output=args.json,
                       scenario=args.scenario, config=args.config)


if __name__ == "__main__":
    sys.exit(main())

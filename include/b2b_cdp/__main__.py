"""Command line: python -m b2b_cdp {demo,validate} ..."""

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
    args = parser.parse_args(argv)

    if args.command == "demo":
        from b2b_cdp.demo import DEFAULT_SCENARIO, run_demo

        run_demo(args.scenario or DEFAULT_SCENARIO, args.report)
        return 0

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


if __name__ == "__main__":
    sys.exit(main())

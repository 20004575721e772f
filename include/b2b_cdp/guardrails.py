"""Guardrails as Great Expectations checkpoints, run before any data moves.

The configuration is laid out as small tables (one row per source feed, per destination, per mapped
attribute) and validated by GX 1.x suites. Every expectation carries, in its `meta`, the rule it
enforces and the fix; a failure message names the rule, the offending entries and that fix.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from b2b_cdp.catalog import PERSON_ATTRIBUTES
from b2b_cdp.config import CdpConfig

log = logging.getLogger(__name__)

MAX_MAPPED_ATTRIBUTES = 50
FORBIDDEN_MAPPING_TYPES = ["array", "map"]


class GuardrailViolation(RuntimeError):
    """A blocking checkpoint failed; the message says which rule, which entry and how to fix it."""


@dataclass
class CheckpointOutcome:
    name: str
    success: bool
    violations: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"success": self.success, "violations": self.violations}


def _tables(cfg: CdpConfig) -> dict[str, list[dict]]:
    feeds = [{"munchkin_id": s.munchkin_id, "source_id": s.id, "platform_instance": f.platform_instance,
              "sandbox": f.sandbox} for s in cfg.sources if s.type == "marketo" for f in s.feeds]
    per_instance: dict[str, dict] = {}
    for row in feeds:
        entry = per_instance.setdefault(row["munchkin_id"], {"munchkin_id": row["munchkin_id"],
                                                              "platform_instances": set(), "sources": set()})
        entry["platform_instances"].add(row["platform_instance"])
        entry["sources"].add(row["source_id"])
    topology = [{"munchkin_id": m, "platform_instance_count": len(e["platform_instances"]),
                 "entry": f"Marketo {m} (sources {', '.join(sorted(e['sources']))}) feeds platform "
                          f"instances {', '.join(sorted(e['platform_instances']))}"}
                for m, e in sorted(per_instance.items())]
    destinations = [{"destination_id": d.id, "mapped_attribute_count": len(d.mapping),
                     "entry": f"destinations.{d.id}.mapping ({len(d.mapping)} attributes)"}
                    for d in cfg.destinations]
    mappings = [{"destination_id": d.id, "source": m.source, "source_type": PERSON_ATTRIBUTES[m.source],
                 "entry": f"destinations.{d.id}.mapping[{i}] ({m.source} -> {m.target}, "
                          f"{PERSON_ATTRIBUTES[m.source]}-typed)"}
                for d in cfg.destinations for i, m in enumerate(d.mapping)]
    return {"marketo_source_topology": topology, "destination_attribute_counts": destinations,
            "destination_attribute_types": mappings}


def _suites():
    import great_expectations.expectations as gxe

    return {
        "config_topology": [(
            "marketo_source_topology",
            gxe.ExpectColumnValuesToBeBetween(
                column="platform_instance_count", min_value=1, max_value=1, meta={
                    "rule": "One Marketo instance may feed only one platform instance (it may feed "
                            "several sandboxes of that instance)",
                    "fix": "keep one platform_instance in the feeds of this Marketo source, or add "
                           "its other sandboxes under that same platform instance"}),
        )],
        "config_destination_mappings": [(
            "destination_attribute_counts",
            gxe.ExpectColumnValuesToBeBetween(
                column="mapped_attribute_count", min_value=0, max_value=MAX_MAPPED_ATTRIBUTES, meta={
                    "rule": f"At most {MAX_MAPPED_ATTRIBUTES} profile attributes may be mapped to "
                            "one destination",
                    "fix": f"remove mappings until {MAX_MAPPED_ATTRIBUTES} or fewer remain"}),
        ), (
            "destination_attribute_types",
            gxe.ExpectColumnValuesToNotBeInSet(
                column="source_type", value_set=FORBIDDEN_MAPPING_TYPES, meta={
                    "rule": "Array- and map-typed profile attributes cannot be mapped to Marketo "
                            "person fields",
                    "fix": "map a scalar attribute instead, or drop this mapping"}),
        )],
    }


def gx_context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def run_config_checkpoints(cfg: CdpConfig) -> dict[str, CheckpointOutcome]:
    """Run every configuration checkpoint; never raises for a violation (see enforce)."""
    import great_expectations as gx
    import pandas as pd

    context = gx_context()
    source = context.data_sources.add_pandas("cdp_config")
    tables = _tables(cfg)
    outcomes: dict[str, CheckpointOutcome] = {}
    for checkpoint_name, checks in _suites().items():
        outcome = CheckpointOutcome(checkpoint_name, True)
        for table_name, expectation in checks:
            rows = tables[table_name]
            if not rows:
                continue
            asset = source.add_dataframe_asset(f"{checkpoint_name}__{table_name}")
            batch = asset.add_batch_definition_whole_dataframe("whole")
            table_suite = context.suites.add(gx.ExpectationSuite(name=f"{checkpoint_name}__{table_name}"))
            table_suite.add_expectation(expectation)
            definition = context.validation_definitions.add(gx.ValidationDefinition(
                name=f"{checkpoint_name}__{table_name}", data=batch, suite=table_suite))
            checkpoint = context.checkpoints.add(gx.Checkpoint(
                name=f"{checkpoint_name}__{table_name}", validation_definitions=[definition],
                result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["entry"]}))
            result = checkpoint.run(batch_parameters={"dataframe": pd.DataFrame(rows)})
            for run_result in result.run_results.values():
                for check in run_result.results:
                    if check.success:
                        continue
                    outcome.success = False
                    meta = check.expectation_config.meta or {}
                    for bad in check.result.get("unexpected_index_list") or []:
                        outcome.violations.append(
                            f"[{checkpoint_name}] rule: {meta.get('rule')}. Offending entry: {bad['entry']}. "
                            f"Fix: {meta.get('fix')}.")
        outcomes[checkpoint_name] = outcome
        log.info("Checkpoint %s: %s", checkpoint_name, "passed" if outcome.success else "FAILED")
    return outcomes


def enforce(outcomes: dict[str, CheckpointOutcome]) -> None:
    failures = [v for o in outcomes.values() for v in o.violations]
    if failures:
        raise GuardrailViolation("Guardrail checkpoint failed; nothing was moved.\n" + "\n".join(failures))

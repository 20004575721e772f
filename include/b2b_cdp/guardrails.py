"""Guardrails as Great Expectations checkpoints, run before any data moves.

The configuration is laid out as small tables (one row per source feed, per destination, per mapped
attribute, per sandbox's segment counts, per condition tree, per condition) and validated by GX 1.x
suites. Every expectation carries, in its `meta`, the rule it enforces and the fix; a failure message
names the rule, the offending entries (by YAML path) and that fix.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from b2b_cdp.catalog import PERSON_ATTRIBUTES
from b2b_cdp.config import (MAX_VALUES_PER_CONDITION, PROJECT_ROOT, AccountCondition, AccountSegmentCondition,
                            CdpConfig, Comparison, Condition)

log = logging.getLogger(__name__)

MAX_MAPPED_ATTRIBUTES = 50
FORBIDDEN_MAPPING_TYPES = ["array", "map"]
# Segmentation limits, per sandbox (config_segments).
MAX_SEGMENTS_PER_SANDBOX = 4000
MAX_STREAMING_SEGMENTS_PER_SANDBOX = 500
MAX_ACCOUNT_AUDIENCES_PER_SANDBOX = 50
MAX_CONDITION_DEPTH = 5          # all/any/not containers nested in one another


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
            "destination_attribute_types": mappings, **_segment_tables(cfg)}


# ------------------------------------------------------------------------------ segment limits


def _condition_trees(cfg: CdpConfig):
    """(YAML path, condition) of every condition tree of the audience language in the configuration:
    segments' `where` and buying-group roles' `where`."""
    for i, segment in enumerate(cfg.segments):
        yield f"segments[{i}] ({segment.id}).where", segment.where
    for t, template in enumerate(cfg.buying_groups.templates):
        for r, role in enumerate(template.roles):
            if role.where is not None:
                yield f"buying_groups.templates[{t}] ({template.id}).roles[{r}].where", role.where


def _walk(cond: Condition | AccountSegmentCondition, path: str, containers: tuple[str, ...] = ()):
    """(path, condition, the all/any/not containers it sits in, outermost first) for every node; an
    account audience's `person` condition is walked as part of its tree (its containers count)."""
    yield path, cond, containers
    for key, children in (("all", cond.all_), ("any", cond.any_), ("not", [cond.not_] if cond.not_ else None)):
        for i, child in enumerate(children or []):
            child_path = f"{path}.not" if key == "not" else f"{path}.{key}[{i}]"
            yield from _walk(child, child_path, containers + (key,))
    if isinstance(cond, AccountSegmentCondition) and cond.person is not None:
        yield from _walk(cond.person, f"{path}.person", containers)


def _value_count(cond: Comparison) -> int:
    return len(cond.value) if isinstance(cond.value, list) else int(cond.value is not None)


def _leaf_values(cond: Condition | AccountCondition | AccountSegmentCondition) -> tuple[str, list[tuple[str, int]]]:
    """The key of a leaf condition and the values it compares against, part by part."""
    if isinstance(cond, AccountSegmentCondition) and cond.in_segment is not None:
        return "in_segment", [("segment", 1)]
    if isinstance(cond, (AccountCondition, AccountSegmentCondition)):
        return _account_values(cond, "")
    if cond.attribute is not None:
        return "attribute", [("value", _value_count(cond.attribute))]
    if cond.account is not None:
        return _account_values(cond.account, "account.")
    if cond.event is not None:
        return "event", [(f"where[{i}].value", _value_count(f)) for i, f in enumerate(cond.event.where)]
    if cond.buying_group is not None:
        return "buying_group", [(name, 1) for name in cond.buying_group.model_dump(exclude_none=True)]
    return "in_segment", [("segment", 1)]


def _account_values(cond: AccountCondition | AccountSegmentCondition, prefix: str) -> tuple[str, list[tuple[str, int]]]:
    if cond.attribute is not None:
        return f"{prefix}attribute", [("value", _value_count(cond.attribute))]
    agg = cond.opportunities
    return f"{prefix}opportunities", [("value", _value_count(agg)), ("stages", len(agg.stages or []))]


def _numbered(n: int) -> str:
    return f"{n:,}" + ("th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th"))


def _count_row(label: str, what: str, paths: list[str], limit: int) -> dict:
    over = f"; {paths[limit]} is the {_numbered(limit + 1)}" if len(paths) > limit else ""
    return {"count": len(paths), "entry": f"sandbox {label}: {len(paths):,} {what}{over}"}


def _segment_tables(cfg: CdpConfig) -> dict[str, list[dict]]:
    segment_counts, streaming_counts, account_audience_counts = [], [], []
    for sandbox in cfg.sandboxes():
        label = f"{sandbox.platform_instance}/{sandbox.name}"
        here = [(i, s) for i, s in enumerate(cfg.segments) if cfg.sandbox_of(s) == sandbox]
        segment_counts.append(_count_row(label, "segments", [f"segments[{i}] ({s.id})" for i, s in here],
                                         MAX_SEGMENTS_PER_SANDBOX))
        streaming_counts.append(_count_row(
            label, "streaming segments", [f"segments[{i}] ({s.id}).mode" for i, s in here if s.mode == "streaming"],
            MAX_STREAMING_SEGMENTS_PER_SANDBOX))
        # Account audiences: every segment with `audience: account`, and each solution interest's
        # inline `accounts` (one naming an account audience segment reuses it: not counted again).
        audiences = [f"segments[{i}] ({s.id}).audience" for i, s in here if s.audience == "account"]
        audiences += [f"buying_groups.solution_interests[{i}] ({si.id}).accounts"
                      for i, si in enumerate(cfg.buying_groups.solution_interests)
                      if cfg.sandbox_of(si) == sandbox and si.accounts.segment is None]
        account_audience_counts.append(_count_row(label, "account audiences", audiences,
                                                  MAX_ACCOUNT_AUDIENCES_PER_SANDBOX))

    depths, values = [], []
    leaves: list[tuple[str, Condition | AccountCondition]] = []
    for root_path, root in _condition_trees(cfg):
        deepest_path, deepest = root_path, ()
        for path, cond, containers in _walk(root, root_path):
            if cond.all_ is None and cond.any_ is None and cond.not_ is None and getattr(cond, "person", None) is None:
                leaves.append((path, cond))
            elif len(containers) + 1 > len(deepest):
                deepest_path, deepest = path, containers + (_container(cond),)
        depths.append({"depth": len(deepest), "entry": f"{deepest_path}: all/any/not nested {len(deepest)} deep "
                                                       f"({' > '.join(deepest) or 'none'})"})
    leaves += [(f"buying_groups.solution_interests[{i}] ({si.id}).accounts.where", si.accounts.where)
               for i, si in enumerate(cfg.buying_groups.solution_interests) if si.accounts.where is not None]
    for path, cond in leaves:
        key, parts = _leaf_values(cond)
        total = sum(n for _, n in parts)
        shown = ", ".join(f"{name} {n}" for name, n in parts if n)
        values.append({"value_count": total,
                       "entry": f"{path}.{key}: {total} values" + (f" ({shown})" if shown else "")})
    return {"sandbox_segment_counts": segment_counts, "sandbox_streaming_segment_counts": streaming_counts,
            "sandbox_account_audience_counts": account_audience_counts, "condition_depths": depths,
            "condition_values": values}


def _container(cond: Condition) -> str:
    return "all" if cond.all_ is not None else "any" if cond.any_ is not None else "not"


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
        "config_segments": [(
            "sandbox_segment_counts",
            gxe.ExpectColumnValuesToBeBetween(
                column="count", min_value=0, max_value=MAX_SEGMENTS_PER_SANDBOX, meta={
                    "rule": f"At most {MAX_SEGMENTS_PER_SANDBOX:,} segments per sandbox",
                    "fix": f"remove or merge segments until {MAX_SEGMENTS_PER_SANDBOX:,} or fewer remain "
                           "in this sandbox (segments that differ only in a value can often be one "
                           "segment with an in list), or move some to another sandbox"}),
        ), (
            "sandbox_streaming_segment_counts",
            gxe.ExpectColumnValuesToBeBetween(
                column="count", min_value=0, max_value=MAX_STREAMING_SEGMENTS_PER_SANDBOX, meta={
                    "rule": f"At most {MAX_STREAMING_SEGMENTS_PER_SANDBOX} streaming segments per sandbox",
                    "fix": f"declare segments beyond the {MAX_STREAMING_SEGMENTS_PER_SANDBOX} that need "
                           "continuous evaluation mode: batch (evaluated once a day)"}),
        ), (
            "sandbox_account_audience_counts",
            gxe.ExpectColumnValuesToBeBetween(
                column="count", min_value=0, max_value=MAX_ACCOUNT_AUDIENCES_PER_SANDBOX, meta={
                    "rule": f"At most {MAX_ACCOUNT_AUDIENCES_PER_SANDBOX} account audiences per sandbox "
                            "(segments with audience: account, and the inline accounts of each buying-group "
                            "solution interest)",
                    "fix": "merge account audiences that differ only in a value (an in list), let solution "
                           "interests with the same accounts name one account audience segment "
                           "(accounts: {segment: <id>}), or move some to another sandbox"}),
        ), (
            "condition_depths",
            gxe.ExpectColumnValuesToBeBetween(
                column="depth", min_value=0, max_value=MAX_CONDITION_DEPTH, meta={
                    "rule": f"Conditions nest at most {MAX_CONDITION_DEPTH} all/any/not deep",
                    "fix": "flatten the nesting (an all directly inside an all is one all, likewise any; "
                           "a not over an any is an all of nots), or move an inner part into a segment "
                           "of its own and refer to it with in_segment"}),
        ), (
            "condition_values",
            gxe.ExpectColumnValuesToBeBetween(
                column="value_count", min_value=0, max_value=MAX_VALUES_PER_CONDITION, meta={
                    "rule": f"At most {MAX_VALUES_PER_CONDITION} values in one condition (an in or "
                            "not_in list, an opportunity condition's stages, an event condition's "
                            "filters together)",
                    "fix": f"split the values over several conditions of at most {MAX_VALUES_PER_CONDITION} "
                           "each under an any, or match a pattern (starts_with, contains) instead of "
                           "listing the values"}),
        )],
    }


GX_ROOT_ENV = "CDP_GX_ROOT"        # the folder holding gx/uncommitted/data_docs (default: the project's build/)
DATA_DOCS_SITE = Path("gx", "uncommitted", "data_docs", "local_site")


def data_docs_dir() -> Path:
    """Where every checkpoint renders its Data Docs pages (the B2B CDP view serves this folder)."""
    return Path(os.environ.get(GX_ROOT_ENV) or PROJECT_ROOT / "build") / DATA_DOCS_SITE


def gx_context():
    """An in-memory Great Expectations context whose Data Docs site is the shared folder: results
    stay in memory, their pages accumulate on disk (one folder per checkpoint and run)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(site_name="cdp", site_config={
        "class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(data_docs_dir())}})
    return context


def build_data_docs(context) -> None:
    """Render the context's results into the Data Docs folder; a failure there never fails a check."""
    try:
        context.build_data_docs(site_names=["cdp"])
    except Exception as exc:   # noqa: BLE001 - the checkpoint's verdict stands; the pages are a view of it
        log.warning("Data Docs not built in %s: %s", data_docs_dir(), exc)


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
            name = f"{checkpoint_name}__{table_name}"
            asset = source.add_dataframe_asset(name)
            batch = asset.add_batch_definition_whole_dataframe("whole")
            table_suite = context.suites.add(gx.ExpectationSuite(name=name))
            table_suite.add_expectation(expectation)
            definition = context.validation_definitions.add(gx.ValidationDefinition(
                name=name, data=batch, suite=table_suite))
            checkpoint = context.checkpoints.add(gx.Checkpoint(
                name=name, validation_definitions=[definition],
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
    build_data_docs(context)
    return outcomes


def run_rule_checkpoint(name: str, sandbox, run_id: str, facts) -> CheckpointOutcome:
    """A checkpoint over facts computed in the warehouse (a DataFrame of one row per rule: `rule`,
    `violations`, `example`): every rule must have no violation. The result is rendered with the
    other Data Docs and stored in the sandbox's ops_checkpoint_result."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from b2b_cdp.ops import record_checkpoints

    context = gx_context()
    batch = context.data_sources.add_pandas(name).add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole")
    suite = context.suites.add(gx.ExpectationSuite(name=name))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="violations", max_value=0))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    result = definition.run(batch_parameters={"dataframe": facts}, result_format={
        "result_format": "COMPLETE", "unexpected_index_column_names": ["rule"]})
    build_data_docs(context)
    outcome = CheckpointOutcome(name, result.success)
    examples = dict(zip(facts["rule"], zip(facts["violations"], facts["example"])))
    for check in result.results:
        for row in check.result.get("unexpected_index_list") or []:
            count, example = examples[row["rule"]]
            outcome.violations.append(f"{row['rule']}: {count} violation(s), e.g. {example}")
    record_checkpoints(sandbox, run_id, {name: outcome})
    log.info("Checkpoint %s: %s%s", name, "passed" if outcome.success else "FAILED ",
             "; ".join(outcome.violations))
    return outcome


def enforce(outcomes: dict[str, CheckpointOutcome]) -> None:
    failures = [v for o in outcomes.values() for v in o.violations]
    if failures:
        raise GuardrailViolation("Guardrail checkpoint failed; nothing was moved.\n" + "\n".join(failures))

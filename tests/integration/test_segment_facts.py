"""The daily and streaming passes read per-pass facts tables (one scan of the events, one of the
deals) instead of a subquery per person: for every kind of event and opportunity condition, the
members must be exactly those of the self-contained form (the one explain-segment evaluates)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from b2b_cdp import segments, warehouse
from b2b_cdp.config import Segment
from tests.integration.test_explain import stitched  # noqa: F401 (the fixture)
from tests.integration.test_pipeline_stages import CLOCK

VISIT = {"type": "Visit Webpage", "within": {"days": 60}}
FORM = {"type": "Fill Out Form", "within": {"days": 60}}
WON_SUM = {"aggregate": "sum", "field": "amount", "won": True}
CONDITIONS = {
    "visit_url_case": {"event": {**VISIT, "where": [{"field": "url", "op": "contains", "value": "NEW-Product"}]}},
    "visit_url_start": {"event": {**VISIT, "where": [{"field": "url", "op": "starts_with", "value": "WWW.bodea"}]}},
    "visit": {"event": VISIT},
    "visit_twice": {"event": {**VISIT, "count": {"op": "gte", "value": 2}}},
    "visit_url": {"event": {**VISIT, "where": [{"field": "url", "op": "contains", "value": "new-product"}]}},
    "visit_under_2": {"event": {**VISIT, "count": {"op": "lt", "value": 2}}},       # zero qualifies
    "no_form": {"event": {**FORM, "count": {"op": "eq", "value": 0}}},              # zero qualifies
    "form_at_most_1": {"event": {**FORM, "count": {"op": "lte", "value": 1}}},
    "form_exactly_1": {"event": {**FORM, "count": {"op": "eq", "value": 1}}},
    "visit_recent": {"event": {"type": "Visit Webpage", "within": {"hours": 12}}},
    "won_over_1m": {"account": {"opportunities": {**WON_SUM, "op": "gt", "value": 1_000_000}}},
    "won_under_1m": {"account": {"opportunities": {**WON_SUM, "op": "lte", "value": 1_000_000}}},
    "no_open_deal": {"account": {"opportunities": {"aggregate": "count", "closed": False, "op": "eq", "value": 0}}},
    "big_proposal": {"account": {"opportunities": {"aggregate": "max", "field": "amount",
                                                   "stages": ["Proposal", "Negotiation"], "op": "gte",
                                                   "value": 1}}},
    "nested": {"all": [{"not": {"event": {**VISIT, "count": {"op": "gte", "value": 2}}}},
                       {"any": [{"event": FORM}, {"account": {"opportunities": {**WON_SUM, "op": "gt",
                                                                                  "value": 0}}}]}]},
}


def segment(segment_id: str, where: dict) -> Segment:
    return Segment.model_validate({"id": segment_id, "name": segment_id, "platform_instance": "bodea",
                                   "sandbox": "prod", "where": where})


def members(conn, compiled: segments.CompiledSegment, as_of) -> set[str]:
    with conn.cursor() as cur:
        cur.execute(compiled.sql, {**compiled.params, "as_of": as_of})
        return {row[0] for row in cur.fetchall()}


@pytest.mark.parametrize("as_of", [CLOCK, CLOCK - timedelta(days=40)])
def test_the_facts_form_selects_exactly_the_self_contained_members(stitched, as_of):
    defined = [segment(name, where) for name, where in CONDITIONS.items()]
    facts = segments.PassFacts(as_of)
    with_facts = [segments.compile_segment(s, facts) for s in defined]
    # Identical conditions share a column: every visit in 60 days is one count, every won-deals sum
    # one sum, each account condition one person-account column.
    assert len(facts.event_columns) == 6 and len(facts.opportunity_columns) == 3
    assert len(facts.person_account_columns) == 5
    with warehouse.connect(stitched) as conn:
        (everyone,), = conn.execute("SELECT count(*) FROM profile_person WHERE excluded_reason IS NULL").fetchall()
        facts.stage(conn)
        found = {}
        for s, compiled in zip(defined, with_facts):
            expected = members(conn, segments.compile_segment(s), as_of)
            found[s.id] = members(conn, segments.CompiledSegment(
                s.id, facts.member_query(compiled), compiled.params, s.mode, compiled.definition_hash), as_of)
            assert found[s.id] == expected, s.id
    # The comparison means something: some conditions hold for some people and not for others.
    assert sum(0 < len(m) < everyone for m in found.values()) >= 5
    assert found["visit_under_2"] and found["no_form"]
    # Patterns match whatever the case, as ILIKE does in the self-contained form.
    assert found["visit_url_case"] == found["visit_url"] != set() and found["visit_url_start"]

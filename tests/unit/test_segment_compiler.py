import pytest

from b2b_cdp.config import Segment
from b2b_cdp.segments import compile_segment, evaluation_order, streaming_ineligibility


def segment(where, **extra):
    return Segment.model_validate({"id": "s", "name": "S", "platform_instance": "p", "sandbox": "x",
                                   "where": where, **extra})


def test_values_are_bound_never_formatted():
    nasty = "x'; DROP TABLE profile_person; --"
    compiled = compile_segment(segment({"attribute": {"name": "title", "op": "eq", "value": nasty}}))
    assert nasty not in compiled.sql
    assert nasty in compiled.params.values()
    assert "p.title = %(v0)s" in compiled.sql


def test_the_seed_segment_compiles_to_one_set_based_statement():
    compiled = compile_segment(segment({"all": [
        {"account": {"opportunities": {"aggregate": "sum", "field": "amount", "won": True,
                                       "op": "gt", "value": 1000000}}},
        {"event": {"type": "Visit Webpage", "where": [{"field": "url", "op": "contains", "value": "new-product"}],
                   "within": {"days": 30}}}]}))
    sql = compiled.sql
    assert ";" not in sql and " AND " in sql  # one statement
    assert "sum(o.amount)" in sql and "profile_opportunity" in sql and "profile_event" in sql
    assert "%(as_of)s" in sql and "now()" not in sql.lower()
    assert set(compiled.params.values()) >= {True, 1000000, "%new-product%", "Visit Webpage", 720}


def test_like_wildcards_in_values_are_escaped():
    compiled = compile_segment(segment({"attribute": {"name": "email", "op": "ends_with", "value": "_co%"}}))
    assert compiled.params["v0"] == "%\\_co\\%"


def test_not_any_and_lists():
    compiled = compile_segment(segment({"not": {"any": [
        {"attribute": {"name": "title", "op": "in", "value": ["CTO", "CIO"]}},
        {"attribute": {"name": "unsubscribed", "op": "eq", "value": True}}]}}))
    assert compiled.sql.count("NOT") == 1 and " OR " in compiled.sql and "= ANY(" in compiled.sql
    assert compiled.params["v0"] == ["CTO", "CIO"]


def test_not_in_reads_as_sql_after_its_column():
    compiled = compile_segment(segment({"attribute": {"name": "title", "op": "not_in", "value": ["CTO"]}}))
    assert "p.title <> ALL(%(v0)s)" in compiled.sql


def test_event_count_thresholds_use_a_count():
    compiled = compile_segment(segment({"event": {"type": "Open Email", "within": {"hours": 6},
                                                  "count": {"op": "gte", "value": 3}}}))
    assert "count(*)" in compiled.sql and compiled.params["v2"] == 3


def test_streaming_eligibility():
    assert streaming_ineligibility(segment({"event": {"type": "x", "within": {"hours": 23}}})) is None
    assert "24 h" in streaming_ineligibility(segment({"event": {"type": "x", "within": {"days": 1}}}))
    assert "multi-entity" in streaming_ineligibility(
        segment({"account": {"attribute": {"name": "industry", "op": "eq", "value": "x"}}}))


def test_segments_are_evaluated_after_their_inputs():
    a = segment({"in_segment": "b"}).model_copy(update={"id": "a"})
    b = segment({"attribute": {"name": "title", "op": "exists"}}).model_copy(update={"id": "b"})
    assert [s.id for s in evaluation_order([a, b])] == ["b", "a"]


@pytest.mark.parametrize("where, message", [
    ({"attribute": {"name": "title", "op": "gt"}}, "needs one scalar value"),
    ({"attribute": {"name": "title", "op": "bogus", "value": 1}}, "unknown operator"),
    ({"event": {"type": "x", "within": {"days": 1, "hours": 2}}}, "exactly one of: days, hours"),
    ({"account": {"attribute": {"name": "nope", "op": "eq", "value": 1}}}, "unknown account attribute"),
])
def test_bad_conditions_say_what_is_wrong(where, message):
    with pytest.raises(Exception, match=message):
        segment(where)

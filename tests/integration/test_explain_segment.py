"""`explain-segment`: why a person is in or out of a segment, on Bodea ingested, stitched and evaluated."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from b2b_cdp import buying_groups, explain, explain_segment, segments, warehouse
from b2b_cdp.config import DEFAULT_CONFIG_PATH, load_config
from tests.integration.test_explain import sql, stitched  # noqa: F401 (stitched: the fixture)
from tests.integration.test_pipeline_stages import CLOCK

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SEGMENT = "high_value_new_product_visitors"
P2 = "p2@townsend.com"


@pytest.fixture
def evaluated(stitched):
    """Bodea through the real pipeline: ingested, stitched, the segment evaluated at the clock."""
    result = segments.evaluate_sandbox(load_config(), stitched, as_of=CLOCK, run_id="run-1")
    assert result[SEGMENT]["members"] == 1
    return stitched


def explained(email: str, segment: str = SEGMENT, **options) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = explain_segment.run_explain_segment(segment=segment, email=email, out=out, err=err, **options)
    return status, out.getvalue(), err.getvalue()


def test_p2_is_in_on_townsends_stitched_deals_and_the_new_product_visit(evaluated):
    status, text, err = explained(P2)
    assert (status, err) == (0, "")
    assert text.startswith(
        f"segment {SEGMENT} (High-value new product visitors, batch) in sandbox bodea/prod\n"
        "evaluated at 2026-11-20T12:00:00Z: the segment's latest evaluation (run run-1)\n"
        f"email '{P2}': 1 person\n")
    assert "  verdict: IN -- the segment's condition holds\n" in text
    assert ("  stored membership: a member since 2026-11-20T12:00:00Z (evaluation at 2026-11-20T12:00:00Z, "
            "run run-1): agrees\n") in text
    lines = text.split("  conditions:\n")[1].splitlines()
    assert lines[0] == "    [holds] where: all of 2 -- 2 of 2 hold"
    # Townsend's two won deals, one per CRM, summed across the MDM-stitched account: 1.1M > 1M.
    assert lines[1] == ("      [holds] where.all[0]: sum of amount over the won deals of an account > 1,000,000 "
                        "-- 1 of 1 account meets it (highest total 1,100,000)")
    assert lines[2].strip().startswith("Townsend (acc_") and lines[2].endswith(
        ", MDM MDM-TOWNSEND): sum of amount over 2 deals = 1,100,000, meets > 1,000,000")
    assert [line.split()[1:] for line in lines[3:5]] == [["Opportunity", "1", "200,000", "Closed", "Won", "2026-02-15"],
                                                         ["Opportunity", "2", "900,000", "Closed", "Won", "2026-05-20"]]
    # The new-product visit, counted in the 30 days before the evaluation time.
    assert lines[5] == ("      [holds] where.all[1]: event 'Visit Webpage' where url contains 'new-product' within "
                        "30 days, at least 1 -- 1 matching event in the window, needs at least 1")
    assert lines[6].strip() == "window: after 2026-10-21T12:00:00Z up to 2026-11-20T12:00:00Z"
    assert lines[7].split() == ["2026-10-25T15:02:00Z", "Visit", "Webpage", "www.bodea.com/products/new-product"]
    assert len(lines) == 8

    status, out, _ = explained(P2, json_output=True)
    report = json.loads(out)
    assert status == 0 and report["looked_for"] == {"segment": SEGMENT, "email": P2, "sandbox": "bodea/prod"}
    assert report["as_of"] == "2026-11-20T12:00:00Z"
    (person,) = report["persons"]
    assert (person["verdict"], person["stored"]["member"], person["stored"]["agrees"]) == ("in", True, True)
    deals, visit = person["condition"]["children"]
    (townsend,) = deals["evidence"]["accounts"]
    assert (deals["holds"], townsend["total"], townsend["holds"]) == (True, 1100000, True)
    assert sum(o["amount"] for o in townsend["opportunities"]) == 1100000
    assert (visit["holds"], visit["evidence"]["count"]) == (True, 1)
    assert visit["evidence"]["events"] == [{"event_type": "Visit Webpage", "occurred_at": "2026-10-25T15:02:00Z",
                                            "url": "www.bodea.com/products/new-product",
                                            "primary_value": "www.bodea.com/products/new-product"}]


@pytest.mark.parametrize("email, failing, evidence", [
    # Townsend qualifies, but p1 visited the pricing page, not the new product's.
    ("p1@townsend.com", "where.all[1] (event 'Visit Webpage' where url contains 'new-product' within 30 days, "
                        "at least 1: 0 matching events in the window, needs at least 1)",
     ["www.bodea.com/pricing", "does not pass the filters"]),
    # p3's new-product visit is older than the 30 days before the evaluation time.
    ("p3@townsend.com", "where.all[1] (event 'Visit Webpage'",
     ["2026-09-10T14:00:00Z", "www.bodea.com/products/new-product", "outside the window"]),
    # Globex visited in time, but its won deals total 950,000.
    ("g1@globex.example", "where.all[0] (sum of amount over the won deals of an account > 1,000,000: 0 of 1 "
                          "account meets it (highest total 950,000))",
     ["sum of amount over 1 deal = 950,000, does not meet > 1,000,000", "Globex Pilot"]),
])
def test_a_person_who_is_out_shows_the_condition_that_fails(evaluated, email, failing, evidence):
    status, text, err = explained(email)
    assert (status, err) == (0, "")
    assert f"  verdict: OUT -- fails at {failing}" in text
    assert "  stored membership: not a member (evaluation at 2026-11-20T12:00:00Z, run run-1): agrees\n" in text
    assert "    [fails] where: all of 2 -- 1 of 2 hold" in text
    for part in evidence:
        assert part in text


def test_the_evaluation_time_can_be_given(evaluated):
    """Forty days on, p2's visit has left the window; the stored membership is the last evaluation's."""
    status, text, _ = explained(P2, as_of="2026-12-30")
    assert status == 0
    assert "evaluated at 2026-12-30T00:00:00Z: given with --as-of" in text
    assert "verdict: OUT -- fails at where.all[1]" in text
    assert "window: after 2026-11-30T00:00:00Z up to 2026-12-30T00:00:00Z" in text
    assert "www.bodea.com/products/new-product  outside the window" in text
    assert ("stored membership: a member since 2026-11-20T12:00:00Z (evaluation at 2026-11-20T12:00:00Z, run "
            "run-1): DISAGREES (the stored membership is that of the evaluation at 2026-11-20T12:00:00Z, not of "
            "this time)") in text
    # Before any evaluation (the visit already counts): no stored membership to compare with.
    status, text, _ = explained(P2, as_of="2026-11-01T00:00:00+00:00")
    assert status == 0 and "verdict: IN" in text
    assert "stored membership: the segment has no evaluation recorded at or before this time" in text


def test_several_persons_for_one_email_and_a_stale_membership(evaluated):
    """An email carried by records of two persons explains both; data changed after the evaluation
    makes the stored membership disagree (exit 3)."""
    (g1,), = sql(evaluated, "SELECT person_id FROM profile_person WHERE email = 'g1@globex.example'")
    (p2,), = sql(evaluated, "SELECT person_id FROM profile_person WHERE email = %s", (P2,))
    with warehouse.connect(evaluated) as conn:
        conn.execute("INSERT INTO core_person (source_key, system, instance, record_type, email, extracted_at) "
                     "VALUES ('2099@222-BBB-222.Marketo', 'Marketo', '222-BBB-222', 'lead', 'P2@townsend.com', now())")
        conn.execute("INSERT INTO identity_record_person VALUES ('2099@222-BBB-222.Marketo', %s)", (g1,))
    status, text, _ = explained(P2)
    assert status == 0
    assert f"email '{P2}': 2 persons" in text
    blocks = blocks_of(text)
    assert "verdict: IN" in blocks[p2] and "verdict: OUT -- fails at where.all[0]" in blocks[g1]

    # p2's visit disappears after the evaluation: the verdict now differs from what was stored.
    with warehouse.connect(evaluated) as conn:
        conn.execute("DELETE FROM core_event WHERE occurred_at = '2026-10-25T15:02:00Z'")
    status, text, _ = explained(P2)
    assert status == explain_segment.MEMBERSHIP_DISAGREES
    assert ("DISAGREES (the data changed since that evaluation (run the segmentation again))" in
            blocks_of(text)[p2])


EVERY_KIND = {
    "id": "every_kind", "name": "Every kind of condition", "platform_instance": "bodea", "sandbox": "prod",
    "where": {"all": [
        {"in_segment": SEGMENT},
        {"any": [{"attribute": {"name": "title", "op": "contains", "value": "VP"}},
                 {"account": {"attribute": {"name": "name", "op": "eq", "value": "Globex"}}}]},
        {"not": {"attribute": {"name": "unsubscribed", "op": "eq", "value": True}}},
        {"buying_group": {"solution_interest": "new_product", "role": "Decision Maker"}},
        {"event": {"type": "Fill Out Form", "within": {"days": 60}, "count": {"op": "lt", "value": 5}}},
    ]}}


def test_every_kind_of_condition_is_explained(evaluated, tmp_path):
    """A segment over membership, attributes, accounts, buying groups and an event count, evaluated
    after the buying groups as the daily run does."""
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["segments"].append(EVERY_KIND)
    path = tmp_path / "cdp.yaml"
    path.write_text(yaml.safe_dump(raw))
    cfg = load_config(path)
    buying_groups.evaluate_sandbox(cfg, evaluated, as_of=CLOCK, run_id="run-1")
    segments.evaluate_sandbox(cfg, evaluated, as_of=CLOCK, run_id="run-1", segment_ids={"every_kind"})

    status, text, _ = explained(P2, segment="every_kind", config=path)
    assert status == 0
    assert "  verdict: IN -- the segment's condition holds\n" in text
    for line in [
        "    [holds] where: all of 5 -- 5 of 5 hold",
        f"      [holds] where.all[0]: in_segment '{SEGMENT}' -- a current member of '{SEGMENT}' since "
        "2026-11-20T12:00:00Z; in_segment reads the stored membership",
        "      [holds] where.all[1]: any of 2 -- 1 of 2 hold",
        "        [holds] where.all[1].any[0]: attribute title contains 'VP' -- title is 'VP Engineering'",
        "        [fails] where.all[1].any[1]: an account's name = 'Globex' -- 0 of 1 account meets it",
        "      [holds] where.all[2]: not -- the inner condition does not hold",
        "        [fails] where.all[2].not: attribute unsubscribed = true -- unsubscribed is false",
        "      [holds] where.all[3]: buying group of 'new_product' (role 'Decision Maker') -- in 1 live group of "
        "'new_product', 1 matching",
        "      [holds] where.all[4]: event 'Fill Out Form' within 60 days, fewer than 5 -- 1 matching event in the "
        "window, needs fewer than 5",
    ]:
        assert line + "\n" in text, line
    assert "(Townsend): role Decision Maker, complete, missing roles Champion, Other -- matches" in text
    assert "2026-10-26T09:30:00Z  Fill Out Form  Contact Us" in text

    # A missing title compares NULL: neither true nor false, so the any fails; every failing leaf is named.
    status, text, _ = explained("lurker@gmail.com", segment="every_kind", config=path)
    assert status == 0
    assert "        [fails: NULL] where.all[1].any[0]: attribute title contains 'VP' -- title is empty (NULL)" in text
    assert ("verdict: OUT -- fails at where.all[0] (in_segment 'high_value_new_product_visitors': not a current "
            "member of 'high_value_new_product_visitors' (never a member); in_segment reads the stored "
            "membership); where.all[1].any[0] (attribute title contains 'VP': title is empty (NULL)); "
            "where.all[1].any[1] (an account's name = 'Globex': the person has no account); where.all[3] "
            "(buying group of 'new_product' (role 'Decision Maker'): in no live group of 'new_product')") in text

    status, out, _ = explained("g1@globex.example", segment="every_kind", config=path, json_output=True)
    (person,) = json.loads(out)["persons"]
    groups = person["condition"]["children"][3]["evidence"]["groups"]
    assert [(g["role"], g["complete"], g["matches"]) for g in groups] == [("Influencer", False, False)]
    globex = person["condition"]["children"][1]["children"][1]["evidence"]["accounts"]
    assert [(a["name"], a["value"], a["holds"]) for a in globex] == [("Globex", "Globex", True)]


def blocks_of(text: str) -> dict[str, str]:
    return {block.split(" ", 1)[0]: block for block in text.split("\nPerson ")[1:]}


def sql(sandbox, text, params=None):
    with warehouse.connect(sandbox) as conn:
        return conn.execute(text, params).fetchall()


def test_unknown_segment_email_sandbox_or_time_exit_non_zero_naming_it(evaluated):
    status, out, err = explained(P2, segment="no_such_segment")
    assert status == explain.NOT_FOUND and out == ""
    assert err == (f"explain-segment: no segment 'no_such_segment' in the configuration (segments: {SEGMENT})\n")
    status, out, err = explained("nobody@example.com")
    assert status == explain.NOT_FOUND
    assert err == "explain-segment: no person with email 'nobody@example.com' in sandbox bodea/prod\n"
    assert json.loads(explained("nobody@example.com", json_output=True)[1])["looked_for"] == {
        "segment": SEGMENT, "email": "nobody@example.com", "sandbox": "bodea/prod"}
    status, _, err = explained(P2, sandbox="bodea/staging")
    assert status == explain.USAGE and "unknown sandbox 'bodea/staging'" in err
    status, _, err = explained(P2, as_of="last tuesday")
    assert status == explain.USAGE and "--as-of 'last tuesday' is not an ISO 8601 date" in err

    # Through the command line, in its own process: the exit status, and stdout stays pure JSON.
    cli = [sys.executable, "-m", "b2b_cdp", "explain-segment", "--json"]
    missing = subprocess.run(cli + ["--segment", "nope", "--email", P2], capture_output=True, text=True,
                             cwd=PROJECT_ROOT, timeout=300)
    assert missing.returncode == 1 and "no segment 'nope'" in missing.stderr
    assert json.loads(missing.stdout)["looked_for"] == {"segment": "nope", "email": P2}
    found = subprocess.run(cli + ["--segment", SEGMENT, "--email", P2, "--as-of", "2026-11-20T12:00:00Z"],
                           capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    assert found.returncode == 0, found.stderr
    report = json.loads(found.stdout)
    assert [p["verdict"] for p in report["persons"]] == ["in"]
    assert report["persons"][0]["stored"]["at_evaluation_time"] is True
